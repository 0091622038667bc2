"""Resume after a kill: a run SIGKILLed mid-epoch and started again with the same command ends like an unbroken one."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_idx_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1"}


def command(workdir, idx_dir):
    """A co-trained defense run (two players, two optimizers): the hardest state to restore."""
    return [sys.executable, os.path.join(ROOT, "tools", "train.py"), "--experiment=fashion_mnist_joint_defense_linf",
            f"--workdir={workdir}", f"--set=data.idx_dir={idx_dir}", "--set=data.batch_size=16", "--set=epochs=4",
            "--set=data.augment=false", "--set=model_kwargs={\"filters\": [8, 16]}",
            "--set=settings.generator_kwargs.filters=4"]


def finish(args, timeout=400):
    proc = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return make_idx_dataset(tmp_path_factory.mktemp("idx"), n_train=640, n_test=96)


def test_sigkilled_run_resumes_from_its_last_epoch_and_ends_like_an_unbroken_run(idx_dir, tmp_path):
    unbroken_dir, broken_dir = tmp_path / "unbroken", tmp_path / "broken"
    finish(command(unbroken_dir, idx_dir))
    unbroken = json.loads((unbroken_dir / "metrics.json").read_text())

    proc = subprocess.Popen(command(broken_dir, idx_dir), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoint = broken_dir / "backup" / "ckpt-000001"
    deadline = time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert checkpoint.exists() and not (broken_dir / "metrics.json").exists()

    finish(command(broken_dir, idx_dir))  # the same command again
    resumed = json.loads((broken_dir / "metrics.json").read_text())
    assert 1 <= resumed["epochs_run"] < 4  # it did not start over
    assert resumed["resumed_from_epoch"] + resumed["epochs_run"] == 4 and "resumed_from_epoch" not in unbroken
    # Both players' optimizers continued from the checkpoint: the step counts add up to an unbroken run's.
    steps = 576 // 16  # it trains on train[:90%] of the 640 images, 16 a batch
    assert resumed["optimizer_steps"] == unbroken["optimizer_steps"] == 4 * steps
    assert resumed["g_optimizer_steps"] == unbroken["g_optimizer_steps"] == 4 * steps
    # Resumed epochs see the shuffle orders the unbroken run saw (training.skip_used_orders): the same result.
    for key in ("clean_accuracy", "adv_accuracy", "val_clean_accuracy", "val_adv_accuracy"):
        assert resumed[key] == unbroken[key], key
    assert not (broken_dir / "backup").exists()  # removed once training completed


def test_a_finished_run_folder_is_not_overwritten(idx_dir, tmp_path):
    workdir = tmp_path / "run"
    (workdir).mkdir()
    (workdir / "metrics.json").write_text("{}")
    proc = subprocess.run(command(workdir, idx_dir), env=ENV, capture_output=True, text=True, timeout=200)
    assert proc.returncode == 2 and "already holds a finished run" in proc.stderr
    assert (workdir / "metrics.json").read_text() == "{}"


def test_resuming_with_another_config_is_refused(idx_dir, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "backup").mkdir()
    (workdir / "config.json").write_text(json.dumps({"kind": "defense", "epochs": 99}))
    proc = subprocess.run(command(workdir, idx_dir), env=ENV, capture_output=True, text=True, timeout=200)
    assert proc.returncode == 2 and "different config" in proc.stderr, proc.stderr[-2000:]
