"""README.md's zoo-contract and Keras-preset examples run as written (the first prints the registry's figure).

(The "Attack your own classifier" example runs in tests/test_byo.py, on a smaller slice.)
"""

import os
import re
import subprocess
import sys

from tfadv import zoo

from conftest import require_fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_zoo_contract_example_prints_the_registry_accuracy():
    require_fashion_mnist()
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme[readme.index("## The zoo contract"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    accuracy, source = proc.stdout.split()[-2:]
    expected = zoo.read_registry(os.path.join(ROOT, "zoo"))["fashion_mnist_small_cnn"]["metrics"]["accuracy"]
    assert float(accuracy) == expected and source == "idx"


def test_keras_presets_example_runs_as_written(tmp_path):
    require_fashion_mnist()
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme[readme.index("### Zoo entries as Keras models"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # in a fresh folder: runs/ does not exist yet
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "# fashion_mnist_pgd_defense_linf" in proc.stdout.splitlines()
    assert sorted(os.listdir(tmp_path / "runs" / "pgd_preset")) == ["MODEL_CARD.md", "metadata.json", "model.keras"]
