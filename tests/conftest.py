"""Shared fixtures. Slow tests run only with --runslow (or TFADV_SLOW=1)."""

import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TFADV_OFFLINE", "1")  # never probe the network from tests
# pytest-xdist runs one worker per core: each worker's TensorFlow (and the tools it starts, which inherit this
# environment) gets its share of the cores instead of a thread per core, so workers do not fight over them.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(_share))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tfadv.data import idx  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes; run with --runslow or TFADV_SLOW=1")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("TFADV_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or TFADV_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def make_idx_dataset(directory, n_train=96, n_test=48, seed=0, size=28):
    """Writes a small learnable MNIST-format dataset: class k has mean brightness ~25k (plus noise).

    Brightness, unlike position, survives the global pooling of the classifiers.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        noise = rng.integers(0, 20, (n, size, size))
        images = (noise + 25 * labels[:, None, None].astype(np.int64)).astype(np.uint8)
        idx.write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), images)
        idx.write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return str(directory)


def brightness_task(n, seed=0):
    """In-memory version of the same task: float32 images [n, 28, 28, 1] in [0, 1] and int labels [n]."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = (rng.uniform(0, 0.1, (n, 28, 28, 1)) + labels[:, None, None, None] * 0.09).astype("float32")
    return images, labels


def brightness_classifier():
    """A dense Keras classifier of the brightness task (class k ~ brightness 0.09 k), trained in seconds."""
    import keras

    keras.utils.set_random_seed(0)
    images, labels = brightness_task(1024)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Rescaling(10.0), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=30, batch_size=64, verbose=0)
    return model


# Runs one tool's entry point (tfadv.cli.run: absl parsing, the tool's main, tfadv's error style) once per argv
# in one process, so a test's refusals pay for one Python and TensorFlow start instead of one each. Prints, per
# argv, the exit status and everything written to stderr (an escaped exception as its traceback).
_BATCHED_RUNNER = """
import contextlib, importlib, io, json, sys, traceback
from absl import flags
from tfadv import cli
tool = importlib.import_module("tfadv_tools." + sys.argv[1])
entry = getattr(tool, "run", None) or (lambda: cli.run(tool.main))  # console-script tools have run()
results = []
for args in json.load(sys.stdin):
    flags.FLAGS.unparse_flags()
    sys.argv, stderr = [sys.argv[0]] + args, io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            entry()
            code = 0
        except SystemExit as e:
            code = e.code
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append([code, stderr.getvalue()])
print("RESULTS " + json.dumps(results))
"""


def run_tool_cases(name: str, cases: list[list[str]]) -> list[tuple[int, str]]:
    """(exit status, stderr) of tool ``name`` (``tools/<name>.py``) for each argv in ``cases``, all in one process
    (no TF_CONFIG, offline, TensorFlow's logs off)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1"}
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", _BATCHED_RUNNER, name], input=json.dumps(cases), env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return [tuple(result) for result in json.loads(lines[-1][len("RESULTS "):])]


def rewrite_keras_file(source, destination, edit) -> None:
    """Copies the ``.keras`` file ``source`` to ``destination`` with ``edit(config)`` applied to its config.json
    dict: a file as an older tfadv wrote it, for tests that old saves still load."""
    import zipfile

    with zipfile.ZipFile(source) as new, zipfile.ZipFile(destination, "w") as old:
        for item in new.infolist():
            content = new.read(item)
            if item.filename == "config.json":
                config = json.loads(content)
                edit(config)
                content = json.dumps(config)
            old.writestr(item, content)


FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist (make installs it)


def require_fashion_mnist() -> str:
    """The real Fashion-MNIST's folder. Missing data skips a test locally and fails it under CI=true, where
    ``make test`` installs it: a figure check must not pass by not running."""
    if not os.path.exists(os.path.join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")):
        message = f"needs the real Fashion-MNIST at {FASHION_MNIST_DIR} (Debian's dataset-fashion-mnist)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}.")
        pytest.skip(message)
    return FASHION_MNIST_DIR


def require_eval(module: str = "art"):
    """A module of the eval extra (ART, SciPy), which ``make test`` installs, imported: a cross-check must not pass
    by not running, so a missing module skips locally and fails under CI=true."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {module} is missing: pip install 'tfadv[eval]'.")
        pytest.skip(f"needs {module}: pip install 'tfadv[eval]'")


def require_art():
    """ART, the maintained library the native attacks are held against (see :func:`require_eval`)."""
    return require_eval("art")


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory):
    """A folder of small, learnable IDX files shaped like (Fashion-)MNIST."""
    return make_idx_dataset(tmp_path_factory.mktemp("idx"))


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A zoo holding one defended classifier of the brightness task (trained in seconds) with a robustness table
    of its own columns; returns (zoo_dir, name)."""
    from tfadv import savedmodel, zoo

    model = brightness_classifier()
    zoo_dir = str(tmp_path_factory.mktemp("zoo"))
    with zoo.staging("tiny", zoo_dir) as stage:
        savedmodel.write_classifier(stage.path, model)
        stage.commit(kind="defended_classifier", dataset="fashion_mnist", metrics={"accuracy": 0.9},
                     config={"model": "dense"})
    zoo.add_metrics("tiny", {"robustness_linf_0.1": {"clean": 0.9, "pgd100x2": 0.5, "settings": {"norm": "linf"}}},
                    zoo_dir)
    return zoo_dir, "tiny"
