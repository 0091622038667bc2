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


def run_readme_example(heading: str, cwd) -> str:
    """Runs the first Python block after ``heading`` in README.md as written, in ``cwd``; returns its stdout."""
    require_fashion_mnist()
    readme = open(os.path.join(ROOT, "README.md")).read()
    code = re.search(r"```python\n(.*?)```", readme[readme.index(heading):], re.S).group(1)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_zoo_contract_example_prints_the_registry_accuracy():
    accuracy, source = run_readme_example("## The zoo contract", ROOT).split()[-2:]
    expected = zoo.read_registry(os.path.join(ROOT, "zoo"))["fashion_mnist_small_cnn"]["metrics"]["accuracy"]
    assert float(accuracy) == expected and source == "idx"


def test_keras_presets_example_runs_as_written(tmp_path):
    out = run_readme_example("### Zoo entries as Keras models", tmp_path)  # in a fresh folder: no runs/ yet
    assert "# fashion_mnist_pgd_defense_linf" in out.splitlines()
    assert sorted(os.listdir(tmp_path / "runs" / "pgd_preset")) == ["MODEL_CARD.md", "metadata.json", "model.keras"]


def test_black_box_example_runs_as_written(tmp_path):
    """README's 'A model you can only query': Square through a scores-only function, from scratch and from a
    transfer generator's x_hat; both lines report the same attacked images and success that grows with queries."""
    import ast

    out = run_readme_example("**A model you can only query.**", tmp_path)
    lines = [line for line in out.splitlines() if line.startswith("from ")]
    assert [line.split(" {")[0] for line in lines] == ["from scratch", "from the generator"]
    curves = [ast.literal_eval("{" + line.split(" {", 1)[1]) for line in lines]
    assert curves[0]["attacked"] == curves[1]["attacked"] > 100  # the images the hidden model gets right
    for curve in curves:
        rates = [curve["success_at"][b] for b in (1, 10, 100)]
        assert rates == sorted(rates) and rates[-1] == curve["success"]
