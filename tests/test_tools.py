"""The absl tools end to end, as a user runs them (subprocesses on tiny IDX data)."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tool(name, *args, check=True, **env_vars):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", **env_vars}
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

    # A perturbation generator against that zoo classifier, through the same three tools.
    attack_dir = str(tmp_path / "attack")
    tool("train", "--experiment=fashion_mnist_unet_l2", f"--workdir={attack_dir}", "--set=target=tiny_cnn",
         f"--set=data.idx_dir={idx_dir}", "--set=epochs=1", "--set=data.batch_size=32",
         "--set=generator_kwargs.filters=4", TFADV_ZOO_DIR=zoo_dir)
    assert {"x_epoch001.png", "delta_amplified_epoch001.png", "x_hat_epoch001.png"} <= set(
        os.listdir(os.path.join(attack_dir, "images")))
    entry = json.loads(tool("export", f"--workdir={attack_dir}", "--name=tiny_unet", f"--zoo_dir={zoo_dir}").stdout)
    entry = entry["tiny_unet"]
    assert entry["kind"] == "perturbation" and entry["target"] == "tiny_cnn"
    assert entry["budget"] == {"norm": "l2", "eps": 2.4}
    assert entry["metrics"]["l2_max"] <= 2.4 and entry["metrics"]["x_hat_range"][0] >= 0
    evaluated = json.loads(tool("evaluate", "--zoo_name=tiny_unet", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}").stdout)
    assert evaluated["adv_accuracy"] == pytest.approx(entry["metrics"]["adv_accuracy"], abs=1e-6)
    attack = tf.saved_model.load(os.path.join(zoo_dir, "tiny_unet"))
    x_hat = attack.serve(tf.random.uniform((3, 28, 28, 1)))
    assert x_hat.shape == (3, 28, 28, 1) and float(tf.reduce_max(x_hat)) <= 1.0


@pytest.mark.parametrize("args,message", [
    (["train", "--experiment=nope", "--workdir=/tmp/x"], "Unknown experiment 'nope'"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--set=epochz=2"], "Unknown config key 'epochz'"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--set=epochs=0"], "epochs must be > 0"),
    (["train", "--flagfile=/nonexistent/flags"], "Unable to open flagfile"),
    (["train", "--workdir=/tmp/x"], "exactly one of --experiment or --config"),
    (["evaluate", "--zoo_name=nope"], "Unknown zoo entry 'nope'"),
    (["evaluate", "--zoo_name=x", "--batch_size=0"], "batch_size"),
    (["evaluate_defense", "--defended=nope"], "Unknown zoo entry 'nope'"),
    (["train", "--experiment=fashion_mnist_unet_l2", "--workdir=/tmp/x", "--set=eps=0"], "eps must be finite and > 0"),
    (["train", "--experiment=fashion_mnist_unet_l2", "--workdir=/tmp/x", "--set=loss=targeted"],
     "needs target_class"),
    (["train", "--experiment=fashion_mnist_unet_joint", "--workdir=/tmp/x", "--set=magnitude_weight=0"],
     "nothing keeps x_hat close"),
    (["train", "--experiment=fashion_mnist_unet_l2", "--workdir=/tmp/x", "--set=data.dataset=nope"],
     "Unknown dataset 'nope'"),
    (["train", "--experiment=fashion_mnist_unet_l2", "--workdir=/tmp/x", "--set=eps=100"], "is absurd for l2"),
    (["train", "--experiment=fashion_mnist_joint_defense_linf", "--workdir=/tmp/x", "--set=refine_steps=-1"],
     "refine_steps must be >= 0"),
    (["benchmark_defense", "--experiments=fashion_mnist_cnn"], "is a classifier experiment, not a defence"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--strategy=horovod"], "should be one of"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--strategy=multi_worker"],
     "needs the TF_CONFIG"),
])
def test_bad_input_gets_one_clear_line_not_a_traceback(args, message):
    proc = tool(*args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_defence_benchmark_prints_a_row_per_experiment():
    proc = tool("benchmark_defense", "--steps=1", "--batch_size=4")
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| fashion_mnist_")]
    assert [row.split(" | ")[1] for row in rows] == ["generator x1", "generator x1 + PGD-2", "PGD-7"]
    assert rows[0].endswith("| 1.00x |") and all(float(row.split(" | ")[2]) > 0 for row in rows)
