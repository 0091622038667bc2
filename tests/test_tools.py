"""The absl tools end to end, as a user runs them (subprocesses on tiny IDX data)."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tool(name, *args, check=True):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", f"{name}.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_train_export_evaluate_end_to_end(idx_dir, tmp_path):
    workdir, zoo_dir = str(tmp_path / "run"), str(tmp_path / "zoo")
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text(f"--experiment=fashion_mnist_cnn\n--workdir={workdir}\n--set=data.idx_dir={idx_dir}\n")
    train = tool("train", f"--flagfile={flagfile}", "--set=epochs=1", "--set=data.batch_size=32",
                 "--set=model_kwargs.filters=[4,8]")
    assert "TensorBoard: tensorboard --logdir" in train.stdout
    assert "from idx" in train.stderr  # the data source is logged
    exported = tool("export", f"--workdir={workdir}", "--name=tiny_cnn", f"--zoo_dir={zoo_dir}")
    entry = json.loads(exported.stdout)["tiny_cnn"]
    run_metrics = json.load(open(os.path.join(workdir, "metrics.json")))
    assert entry["metrics"]["accuracy"] == pytest.approx(run_metrics["accuracy"], abs=1e-6)
    assert entry["config"]["data"]["idx_dir"] == idx_dir
    evaluated = tool("evaluate", "--zoo_name=tiny_cnn", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}")
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(entry["metrics"]["accuracy"], abs=1e-6)
    loaded = tf.saved_model.load(os.path.join(zoo_dir, entry["path"]))
    assert loaded.serve(tf.zeros((1, 28, 28, 1))).shape == (1, 10)
    again = tool("export", f"--workdir={workdir}", "--name=tiny_cnn", f"--zoo_dir={zoo_dir}", check=False)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize("args,message", [
    (["train", "--experiment=nope", "--workdir=/tmp/x"], "Unknown experiment 'nope'"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--set=epochz=2"], "Unknown config key 'epochz'"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--set=epochs=0"], "epochs must be > 0"),
    (["train", "--flagfile=/nonexistent/flags"], "Unable to open flagfile"),
    (["train", "--workdir=/tmp/x"], "exactly one of --experiment or --config"),
    (["evaluate", "--zoo_name=nope"], "Unknown zoo entry 'nope'"),
    (["evaluate", "--zoo_name=x", "--batch_size=0"], "batch_size"),
])
def test_bad_input_gets_one_clear_line_not_a_traceback(args, message):
    proc = tool(*args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
