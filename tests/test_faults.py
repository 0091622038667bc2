"""Fault injection: training runs killed (SIGKILL) at a random moment or at named points (tfadv.faults), or out
of disk, then rerun; and the run folders a run refuses.

Each test kills the same small co-trained defense run (two players, two optimizers: the hardest state to
restore) and checks that the same command, run again, ends with the unbroken run's result bit for bit, that
nothing finished was lost, and that the run folder is left clean. All share one unbroken run. BUILD.md's table
"What survives a crash" lists these tests; the zoo's export has its kills in test_export_zoo.py.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_idx_dataset, run_tool_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1"}
EPOCHS = 3
SAME = ("clean_accuracy", "adv_accuracy", "val_clean_accuracy", "val_adv_accuracy", "optimizer_steps",
        "g_optimizer_steps")


STEPS = 288 // 32  # an epoch: train[:90%] of the 320 images, 32 a batch


def arguments(workdir, idx_dir):
    return ["--experiment=fashion_mnist_joint_defense_linf", f"--workdir={workdir}", f"--set=data.idx_dir={idx_dir}",
            "--set=data.batch_size=32", f"--set=epochs={EPOCHS}", "--set=data.augment=false",
            "--set=model_kwargs={\"filters\": [4, 8]}", "--set=settings.generator_kwargs.filters=4", "--verbose=0"]


def command(workdir, idx_dir):
    return [sys.executable, os.path.join(ROOT, "tools", "train.py"), *arguments(workdir, idx_dir)]


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


def test_sigkilled_run_resumes_from_its_last_epoch_and_ends_like_an_unbroken_run(idx_dir, unbroken, tmp_path):
    """A kill at a moment no fault point names: mid-epoch, half a second after the first checkpoint."""
    proc = subprocess.Popen(command(tmp_path, idx_dir), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "backup" / "ckpt-000001"
    deadline = time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert checkpoint.exists() and not (tmp_path / "metrics.json").exists()

    resumed, _ = finished_like(tmp_path, idx_dir, unbroken)  # the same command again
    assert 1 <= resumed["epochs_run"] < EPOCHS  # it did not start over
    assert resumed["resumed_from_epoch"] + resumed["epochs_run"] == EPOCHS and "resumed_from_epoch" not in unbroken
    # Both players' optimizers continued from the checkpoint: the step counts add up to an unbroken run's, and
    # resumed epochs saw the unbroken run's shuffle orders (training.skip_used_orders): finished_like compared all.
    assert resumed["optimizer_steps"] == resumed["g_optimizer_steps"] == EPOCHS * STEPS


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
    """A rerun then refuses the folder: test_folders_a_run_cannot_use_are_refused_in_one_line_and_left_as_they_were."""
    killed_then_rerun(tmp_path, idx_dir, "run.finished")
    assert {k: metrics(tmp_path)[k] for k in SAME} == {k: unbroken[k] for k in SAME}


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


def test_folders_a_run_cannot_use_are_refused_in_one_line_and_left_as_they_were(idx_dir, tmp_path):
    """A finished run's folder, a half-run folder of another config, and a file: one line each, nothing touched.
    (Refused before any data is read, so the three run in one process.)"""
    finished, other, file = tmp_path / "finished", tmp_path / "other", tmp_path / "file"
    (finished).mkdir()
    (finished / "metrics.json").write_text("{}")
    (other / "backup").mkdir(parents=True)
    (other / "config.json").write_text(json.dumps({"kind": "defense", "epochs": 99}))
    file.write_text("not a folder")
    results = run_tool_cases("train", [arguments(folder, idx_dir) for folder in (finished, other, file)])
    expected = [f"{finished} already holds a finished run", "different config",
                f"--workdir {str(file)!r} is a file, not a folder: choose a folder for the run."]
    for (code, stderr), message in zip(results, expected):
        errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
        assert code == 2 and len(errors) == 1 and message in errors[0], stderr[-2000:]
    assert (finished / "metrics.json").read_text() == "{}" and file.read_text() == "not a folder"
    assert json.loads((other / "config.json").read_text()) == {"kind": "defense", "epochs": 99}


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
