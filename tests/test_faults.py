"""Fault injection: training runs killed (SIGKILL) or out of disk at named points (tfadv.faults), then rerun.

Each test kills the same small co-trained defense run (two players, two
optimizers) at one point and checks that the same command, run again, ends
with the unbroken run's result bit for bit, that nothing finished was lost,
and that the run folder is left clean. BUILD.md's table "What survives a
crash" lists these tests; the zoo's export has its kills in test_export_zoo.py.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import make_idx_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1"}
EPOCHS = 3
SAME = ("clean_accuracy", "adv_accuracy", "val_clean_accuracy", "val_adv_accuracy", "optimizer_steps",
        "g_optimizer_steps")


def command(workdir, idx_dir):
    return [sys.executable, os.path.join(ROOT, "tools", "train.py"), "--experiment=fashion_mnist_joint_defense_linf",
            f"--workdir={workdir}", f"--set=data.idx_dir={idx_dir}", "--set=data.batch_size=32",
            f"--set=epochs={EPOCHS}", "--set=data.augment=false", "--set=model_kwargs={\"filters\": [4, 8]}",
            "--set=settings.generator_kwargs.filters=4", "--verbose=0"]


def train(workdir, idx_dir, fault=None):
    env = {**ENV, "TFADV_FAULT": fault} if fault else ENV
    return subprocess.run(command(workdir, idx_dir), env=env, capture_output=True, text=True, timeout=400)


def metrics(workdir):
    return json.loads((workdir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return make_idx_dataset(tmp_path_factory.mktemp("idx"), n_train=320, n_test=64)


@pytest.fixture(scope="module")
def unbroken_run(idx_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("unbroken")
    proc = train(workdir, idx_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def unbroken(unbroken_run):
    return metrics(unbroken_run)


def killed_then_rerun(workdir, idx_dir, fault):
    proc = train(workdir, idx_dir, fault)
    assert proc.returncode == -signal.SIGKILL, f"not killed at {fault}: {proc.stderr[-2000:]}"
    return workdir


def finished_like(workdir, idx_dir, unbroken):
    proc = train(workdir, idx_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = metrics(workdir)
    assert {k: result[k] for k in SAME} == {k: unbroken[k] for k in SAME}
    assert not (workdir / "backup").exists()
    return result, proc


# One kill point of each pair stays in the default suite (the other runs in make test-slow): they take the same
# recovery path, and the suite must stay under 15 minutes on two cores.
@pytest.mark.parametrize("fault", [pytest.param("backup.weights_written@2", marks=pytest.mark.slow),
                                   "backup.before_commit@2"])
def test_a_kill_while_a_checkpoint_is_written_resumes_from_the_one_before(idx_dir, unbroken, tmp_path, fault):
    killed_then_rerun(tmp_path, idx_dir, fault)
    backup = tmp_path / "backup"
    assert sorted(os.listdir(backup)) == [".ckpt-000002.tmp", "ckpt-000001"]  # epoch 2's checkpoint was torn
    result, _ = finished_like(tmp_path, idx_dir, unbroken)
    assert result["resumed_from_epoch"] == 1 and result["epochs_run"] == EPOCHS - 1


@pytest.mark.parametrize("fault", [pytest.param("run.trained", marks=pytest.mark.slow), "run.saved"])
def test_a_kill_after_the_last_epoch_saves_and_measures_again_without_training(idx_dir, unbroken, tmp_path, fault):
    killed_then_rerun(tmp_path, idx_dir, fault)
    assert not (tmp_path / "metrics.json").exists() and (tmp_path / "backup" / f"ckpt-{EPOCHS:06d}").exists()
    result, _ = finished_like(tmp_path, idx_dir, unbroken)
    assert result["resumed_from_epoch"] == EPOCHS and result["epochs_run"] == 0
    assert result["val_clean_accuracy"] == unbroken["val_clean_accuracy"]  # the killed epochs' logs were kept


def test_a_kill_after_metrics_json_keeps_the_finished_run(idx_dir, unbroken, tmp_path):
    killed_then_rerun(tmp_path, idx_dir, "run.finished")
    assert {k: metrics(tmp_path)[k] for k in SAME} == {k: unbroken[k] for k in SAME}
    proc = train(tmp_path, idx_dir)
    assert proc.returncode == 2 and "already holds a finished run" in proc.stderr


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(idx_dir, unbroken, tmp_path):
    """A checkpoint damaged after it was written (a bad disk, a careless copy) is caught by its checksum before
    any weight is loaded: the run resumes from the previous epoch instead of dying in h5py."""
    killed_then_rerun(tmp_path, idx_dir, "run.trained")
    weights = tmp_path / "backup" / f"ckpt-{EPOCHS:06d}" / "model.weights.h5"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    result, proc = finished_like(tmp_path, idx_dir, unbroken)
    assert result["resumed_from_epoch"] == EPOCHS - 1 and result["epochs_run"] == 1
    assert f"ckpt-{EPOCHS:06d} is damaged" in proc.stderr


def test_a_full_disk_during_a_checkpoint_fails_in_one_line_and_the_rerun_resumes(idx_dir, unbroken, tmp_path):
    proc = train(tmp_path, idx_dir, "enospc:backup.weights_written@2")
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: No space left on device") and "Traceback" not in proc.stderr
    result, _ = finished_like(tmp_path, idx_dir, unbroken)
    assert result["resumed_from_epoch"] == 1


HOLD_LOCK = """
import sys, time
from tfadv.training import locked
with locked(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_run_on_a_live_folder_is_refused_in_one_line_and_a_killed_holder_frees_it(idx_dir, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = train(tmp_path, idx_dir)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1] == (
            f"Error: {tmp_path} is in use by another training run (pid {holder.pid} on {os.uname().nodename}): "
            "wait for it to finish or choose another --workdir.")
        assert not (tmp_path / "config.json").exists()  # it touched nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    from tfadv.training import locked

    with locked(str(tmp_path)):  # the kernel released the killed holder's lock
        pass


def test_a_workdir_that_is_a_file_is_refused_in_one_line(idx_dir, tmp_path):
    workdir = tmp_path / "run"
    workdir.write_text("not a folder")
    proc = train(workdir, idx_dir)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f"Error: --workdir {str(workdir)!r} is a file, not a folder: choose a folder for the run.")


def test_a_full_disk_at_the_registry_write_leaves_the_zoo_as_it_was_and_says_so_in_one_line(unbroken_run, idx_dir,
                                                                                            tmp_path):
    zoo_dir = tmp_path / "zoo"
    export = [sys.executable, os.path.join(ROOT, "tools", "export.py"), f"--workdir={unbroken_run}", "--name=mine",
              f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}", "--source=idx"]
    first = subprocess.run(export, env=ENV, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    before = {n: (zoo_dir / n).stat().st_mtime_ns for n in os.listdir(zoo_dir) if n != ".registry.lock"}
    registry = (zoo_dir / "registry.json").read_bytes()
    proc = subprocess.run(export + ["--overwrite"], env={**ENV, "TFADV_FAULT": "enospc:zoo.moved_in"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: No space left on device")
    assert (zoo_dir / "registry.json").read_bytes() == registry  # byte for byte
    after = {n: (zoo_dir / n).stat().st_mtime_ns for n in os.listdir(zoo_dir) if n != ".registry.lock"}
    assert after == before  # the old SavedModels back in place, no debris
    from tfadv import zoo

    assert zoo.verify("mine", str(zoo_dir)) and zoo.verify("mine_generator", str(zoo_dir))
