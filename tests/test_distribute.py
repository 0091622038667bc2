"""tf.distribute: every custom train_step steps alike on one device, on 2 mirrored replicas and on 2 workers."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv import distribute, experiments, training
from tfadv import config as config_lib
from tfadv.errors import ConfigError
from tfadv.models import perturbation_model, unet
from tfadv.trainers import PerturbationTrainer

from conftest import brightness_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", "PYTHONPATH": ROOT}


def test_mirrored_over_two_devices_steps_like_one_device():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "helpers", "mirrored_equivalence.py")],
                          env=ENV, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(results) == {"perturbation", "gan", "co_trained_defense", "pgd_defense"}
    for name, result in results.items():
        # An unscaled loss would make the mirrored steps twice as large: a difference as big as the change itself.
        assert result["max_weight_change"] > 1e-4, name
        assert result["max_weight_diff"] < 0.01 * result["max_weight_change"], (name, result)
        for metric, value in result["one"].items():
            assert result["mirrored"][metric] == pytest.approx(value, rel=1e-4, abs=1e-5), (name, metric)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow  # two TF processes on 2 cores: ~35 s alone; the mirrored test above covers the step maths
def test_two_worker_cluster_on_loopback_trains_and_writes_one_checkpoint(idx_dir, tmp_path):
    workdir = tmp_path / "run"
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    args = [sys.executable, os.path.join(ROOT, "tools", "train.py"), "--experiment=fashion_mnist_joint_defense_linf",
            f"--workdir={workdir}", "--strategy=multi_worker", f"--set=data.idx_dir={idx_dir}",
            "--set=data.batch_size=32", "--set=epochs=1", "--set=steps_per_epoch=3",
            "--set=model_kwargs={\"filters\": [8, 16]}", "--set=settings.generator_kwargs.filters=4"]
    procs = [subprocess.Popen(args, env={**ENV, "TF_CONFIG": json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        outputs = [p.communicate(timeout=420) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert "2 replicas in sync" in outputs[0][1]
    models = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("model.keras"))
    assert models == ["model.keras", "workers/worker-1/model.keras"]
    chief = json.loads((workdir / "metrics.json").read_text())
    other = json.loads((workdir / "workers" / "worker-1" / "metrics.json").read_text())
    assert chief["epochs_run"] == 1 and chief["accuracy"] == pytest.approx(other["accuracy"])
    assert chief["optimizer_steps"] == chief["g_optimizer_steps"] == 3  # one step per global batch
    assert chief["linf_max"] <= 0.1


def test_strategy_choices_and_cluster_errors_are_clear(monkeypatch):
    cfg = experiments.get_experiment("fashion_mnist_joint_defense_linf")
    with pytest.raises(ConfigError, match="strategy must be one of"):
        config_lib.override(cfg, {"runtime.strategy": "horovod"}).validate()
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the TF_CONFIG"):
        distribute.make_strategy("multi_worker")
    for bad in ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
                '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"index": 0}}', "not json"):
        monkeypatch.setenv("TF_CONFIG", bad)
        with pytest.raises(ConfigError, match="not a valid cluster description"):
            distribute.make_strategy("multi_worker")
    assert distribute.make_strategy("default").num_replicas_in_sync == 1 and distribute.is_chief()


def test_mixed_precision_keeps_float32_outputs_budgets_and_scales_both_losses():
    x, y = brightness_task(64)
    distribute.set_precision(True)
    try:
        classifier = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, strides=4),
                                       keras.layers.GlobalAveragePooling2D(),
                                       keras.layers.Dense(10, dtype="float32")])
        attacker = perturbation_model(unet(filters=4, batch_norm=False), "thresholded", "l2", 1.0)
        trainer = PerturbationTrainer(attacker, classifier)
        trainer(x[:1])
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
        assert attacker.layers[1].compute_dtype == "float16"
        logs = trainer.fit(x, y, batch_size=32, epochs=1, verbose=0).history
        x_hat = attacker(x)
        assert x_hat.dtype == tf.float32 and float(tf.reduce_min(x_hat)) >= 0 and float(tf.reduce_max(x_hat)) <= 1
        assert logs["l2_max"][-1] <= 1.0 and np.isfinite(logs["loss"][-1])
        assert int(trainer.optimizer.iterations) == 2
    finally:
        distribute.set_precision(False)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_runs_reset_the_precision_policy_even_when_they_fail(idx_dir, tmp_path):
    cfg = config_lib.override(experiments.get_experiment("fashion_mnist_cnn"), {
        "data.idx_dir": idx_dir, "runtime.mixed_precision": True, "model": "small_cnn",
        "model_kwargs": {"filters": [4], "bogus": 1}})
    with pytest.raises(ConfigError):
        training.run_experiment(cfg, str(tmp_path / "run"), verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"
