"""How the tools start: ``--help`` without TensorFlow, and a run without TensorFlow's start-up lines on stderr."""

import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(ROOT, "tools", "*.py"))
               if not path.endswith("__init__.py"))
# Tools whose --help still loads TensorFlow, and why. Remove a tool from here once it no longer does.
HELP_IMPORTS_TENSORFLOW: dict = {}
# Runs a tool's --help as `python tools/NAME.py --help` would, then says which heavy modules it loaded.
HELP_RUNNER = """
import json, runpy, sys
tool = sys.argv[1]
sys.argv = [tool, "--help"]
try:
    runpy.run_path(tool, run_name="__main__")
    code = None
except SystemExit as e:
    code = e.code
print("\\nSTARTUP " + json.dumps({"exit": code, "tensorflow": "tensorflow" in sys.modules,
                                  "keras": "keras" in sys.modules}))
"""
# What TensorFlow, CUDA and TFDS print on stderr when nothing keeps them quiet.
NOISE = ("cpu_feature_guard", "cuda", "onednn", "dataset_info.json", "absl::initializelog")


def quiet_env(**env_vars):
    """The environment of a user who has not set TF_CPP_MIN_LOG_LEVEL (conftest.py sets it for the tests)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "TFADV_OFFLINE": "1", **env_vars}


def noise_in(stderr: str) -> list:
    return [line for line in stderr.splitlines() if any(word in line.lower() for word in NOISE)]


def test_every_tool_is_covered():
    assert {"train", "evaluate", "attack", "transfer", "autoattack"} <= set(TOOLS)
    assert set(HELP_IMPORTS_TENSORFLOW) <= set(TOOLS)


@pytest.mark.parametrize("name", TOOLS)
def test_help_answers_without_loading_tensorflow(name):
    proc = subprocess.run([sys.executable, "-c", HELP_RUNNER, os.path.join("tools", f"{name}.py")], cwd=ROOT,
                          env=quiet_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.rsplit("\nSTARTUP ", 1)[1])
    assert report["exit"] in (0, None), proc.stderr
    assert "--verbose" in proc.stdout  # the help itself (every tool has cli's --verbose)
    loads = name in HELP_IMPORTS_TENSORFLOW
    assert report["tensorflow"] == loads and report["keras"] == loads, (
        f"tools/{name}.py --help {'no longer loads' if loads else 'loads'} TensorFlow/Keras: "
        + ("remove it from HELP_IMPORTS_TENSORFLOW." if loads else "import the library inside main() (run "
           f"`python -X importtime tools/{name}.py --help` to see what pulls it in)."))
    assert not noise_in(proc.stderr), proc.stderr


def test_a_run_that_loads_tensorflow_starts_quietly():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), "--list_experiments"],
                          env=quiet_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "fashion_mnist_cnn" in proc.stdout
    assert not noise_in(proc.stderr), proc.stderr


def test_tfds_missing_prepared_copy_warning_is_dropped_and_other_warnings_show(tmp_path):
    (tmp_path / "3.0.1").mkdir()
    (tmp_path / "not_a_version").mkdir()
    script = f"""
from tfadv import cli
cli.setup_logging()
from etils import epath
from tensorflow_datasets.core.utils import file_utils
file_utils.is_valid_variant_dir(epath.Path({str(tmp_path / "3.0.1")!r}))  # "has no dataset_info.json"
file_utils.is_valid_variant_dir(epath.Path({str(tmp_path / "not_a_version")!r}))  # "has invalid version"
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=quiet_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "dataset_info.json" not in proc.stderr, proc.stderr
    assert "Variant folder" in proc.stderr and "has invalid version" in proc.stderr, proc.stderr
    assert not noise_in(proc.stderr), proc.stderr


def test_stderr_filter_drops_only_the_noise():
    """The pipe on file descriptor 2 that TensorFlow's first import goes through, with a C++-style writer."""
    script = r"""
import os, sys
from tfadv import cli, quiet
hook = next(f for f in sys.meta_path if isinstance(f, quiet._QuietTensorFlowImport))
print("python before", file=sys.stderr, flush=True)
with quiet._stderr_filtered(hook.is_noise):
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1712345678.901234    42 port.cc:153] oneDNN custom operations are on.\n")
    os.write(2, b"E0000 00:00:1712345678.901234    42 real.cc:7] a real error\n")
    print("python during", file=sys.stderr)
    os.write(2, b"no newline at the end")
print("\npython after", file=sys.stderr)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=quiet_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["python before", "E0000 00:00:1712345678.901234    42 real.cc:7] a real error",
                                        "python during", "no newline at the end", "python after"]


@pytest.fixture
def quiet():
    from tfadv import quiet

    yield quiet
    # importing it in this process may have put its TensorFlow import hook on sys.meta_path: take it off
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, quiet._QuietTensorFlowImport)]


LINES = {
    "info": b"I0000 00:00:1796587839.665387    1538 port.cc:153] oneDNN custom operations are on.\n",
    "warning": b"W0000 00:00:1751448151.003754   10148 computation_placer.cc:177] computation placer already "
               b"registered. Please check linkage and avoid linking the same target more than once.\n",
    "error": b"E0000 00:00:1751448150.986970   10148 some_op.cc:12] Something went wrong\n",
    "tsl_info": b"2025-02-09 09:37:32.343117: I tensorflow/core/platform/cpu_feature_guard.cc:182] This TensorFlow "
                b"binary is optimized to use available CPU instructions in performance-critical operations.\n",
    "tsl_error": b"2025-02-09 09:37:32.334610: E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:9261] Unable "
                 b"to register cuDNN factory: Attempting to register factory for plugin cuDNN when one has already "
                 b"been registered\n",
    "fatal": b"F0000 00:00:1796587839.665387    1538 x.cc:1] Check failed: boom\n",
    "cpu_tail": b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
                b"appropriate compiler flags.\n",
    "python": b"Traceback (most recent call last):\n",
}


@pytest.mark.parametrize("level,shown", [
    (0, set(LINES)),
    (1, {"warning", "error", "tsl_error", "fatal", "python"}),
    (2, {"error", "fatal", "python"}),  # the duplicate cuDNN registration is a harmless error
    (3, {"fatal", "python"}),
])
def test_native_lines_hidden_at_the_level_of_tf_cpp_min_log_level(quiet, level, shown):
    hook = quiet._QuietTensorFlowImport(level)
    assert {name for name, line in LINES.items() if not hook.is_noise(line)} == shown


def test_failed_cuinit_is_noise_only_where_tensorflow_found_no_cuda_driver(quiet):
    cuinit = b"E0000 00:00:1796588187.097924    2952 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
    hook = quiet._QuietTensorFlowImport(2)
    assert not hook.is_noise(cuinit)  # a machine with a driver: a real error
    assert hook.is_noise(b"I0000 00:00:1796588187.0    2952 cudart_stub.cc:31] Could not find cuda drivers on your "
                         b"machine, GPU will not be used.\n")
    assert hook.is_noise(cuinit)
    assert not quiet._QuietTensorFlowImport(1).is_noise(cuinit)


def test_user_tf_cpp_min_log_level_wins(quiet, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet.quiet_startup()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    quiet.quiet_startup()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"


@pytest.mark.parametrize("script,env_vars", [
    ("import tfadv", {"KERAS_BACKEND": "jax"}),
    # Keras imported before tfadv with another backend (stood in for: no other backend is installed): tfadv, which
    # no longer imports Keras itself, still refuses it.
    ("import sys, types; sys.modules['keras'] = types.SimpleNamespace(backend=types.SimpleNamespace("
     "backend=lambda: 'jax')); import tfadv", {}),
])
def test_tfadv_refuses_another_keras_backend(script, env_vars):
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=quiet_env(**env_vars), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "ImportError: tfadv needs the TensorFlow backend of Keras" in proc.stderr, proc.stderr
