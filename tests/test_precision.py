"""The GPU speed flags on every experiment kind: --mixed_precision and --jit_compile, run on this CPU.

Each case trains a tiny model for 2 steps through ``training.run_experiment`` (what ``tfadv-train`` calls) and
checks that the run finishes with finite metrics; attacks also keep their budget and the [0, 1] range, checked
in float64 on adversarial inputs. XLA on a 2-core CPU is slow to compile: most jit cases are marked slow.
"""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv import config as config_lib
from tfadv import distribute, experiments, training
from tfadv.data.images import write_png
from tfadv.models import build_classifier, perturbation_model, unet
from tfadv.models.universal import UniversalPerturbation
from tfadv.trainers import PerturbationTrainer

TINY_CLASSIFIER = {"filters": [8, 16]}
TINY_GENERATOR = {"depth": 1, "filters": 4}
FLAGS = {"mixed_precision": {"runtime.mixed_precision": True}, "jit_compile": {"runtime.jit_compile": True}}


@pytest.fixture(scope="module")
def keras_target(tmp_path_factory):
    """A tiny Fashion-MNIST-shaped classifier saved as .keras (built under the float32 policy)."""
    path = str(tmp_path_factory.mktemp("target") / "target.keras")
    build_classifier("small_cnn", input_shape=[28, 28, 1], num_classes=10, **TINY_CLASSIFIER).save(path)
    return path


@pytest.fixture(scope="module")
def style_folders(tmp_path_factory):
    """Content and style folders of small PNGs, with pure white areas."""
    root = tmp_path_factory.mktemp("style")
    for folder, n in (("content", 4), ("style", 2)):
        os.makedirs(root / folder)
        for i in range(n):
            image = tf.random.uniform((20 + i, 24, 3), seed=i).numpy()
            image[:8] = 1.0
            write_png(str(root / folder / f"{i}.png"), image)
    return str(root / "content"), str(root / "style")


def _config(kind, idx_dir, keras_target, style_folders):
    quick = {"epochs": 1, "steps_per_epoch": 2}
    labelled = {**quick, "data.idx_dir": idx_dir, "data.batch_size": 16}
    attack = {**labelled, "target": keras_target, "generator_kwargs": TINY_GENERATOR}
    defense = {**labelled, "model_kwargs": TINY_CLASSIFIER}
    cases = {
        "classifier": ("fashion_mnist_cnn", {**labelled, "model_kwargs": TINY_CLASSIFIER, "test_time_flip": False}),
        "perturbation_zoo_target": ("fashion_mnist_unet_l2", {**attack, "target": "fashion_mnist_small_cnn"}),
        "perturbation_keras_target": ("fashion_mnist_unet_l2", attack),
        "perturbation_linf": ("fashion_mnist_unet_l2", {**attack, "norm": "linf", "eps": 0.1}),
        "universal": ("fashion_mnist_universal_linf", {**attack, "generator_kwargs": {**TINY_GENERATOR,
                                                                                      "batch_norm": False}}),
        "gan": ("fashion_mnist_unet_gan", attack),
        "co_trained_defense": ("fashion_mnist_joint_refined_defense_linf",
                               {**defense, "settings.generator_kwargs": TINY_GENERATOR}),
        "pgd_defense": ("fashion_mnist_pgd_defense_l2", {**defense, "settings.steps": 2}),
        "style": ("style_adain", {**quick, "content_dir": style_folders[0], "style_dir": style_folders[1],
                                  "size": 32, "batch_size": 2, "vgg_weights": None}),
    }
    name, overrides = cases[kind]
    return config_lib.override(experiments.get_experiment(name), overrides)


KINDS = ("classifier", "perturbation_zoo_target", "perturbation_keras_target", "perturbation_linf", "universal",
         "gan", "co_trained_defense", "pgd_defense", "style")


def _check_budget_in_float64(attacker, norm, eps):
    """x_hat of adversarial inputs (pixels at 0, 1 and float16-unfriendly values) is inside the budget."""
    rng = np.random.default_rng(0)
    x = rng.choice([0.0, 1.0, 0.1 + 1e-4, 1 / 3, 0.5004883, 0.9999], size=(8, 28, 28, 1)).astype("float32")
    x_hat = attacker(x, training=False)
    assert x_hat.dtype == tf.float32
    x_hat = x_hat.numpy().astype("float64")
    delta = (x_hat - x.astype("float64")).reshape(len(x), -1)
    size = np.sqrt((delta ** 2).sum(1)) if norm == "l2" else np.abs(delta).max(1)
    assert size.max() <= eps, (norm, eps, size.max())
    assert x_hat.min() >= 0.0 and x_hat.max() <= 1.0


# XLA compiles for 30-120 s per kind on 2 cores: the default suite compiles the classifier, --runslow every kind.
FAST_JIT = ("classifier",)
CASES = ([(kind, "mixed_precision") for kind in KINDS]
         + [pytest.param(kind, "jit_compile", marks=() if kind in FAST_JIT else pytest.mark.slow) for kind in KINDS])


@pytest.mark.parametrize("kind,flag", CASES)
def test_every_kind_trains_under_the_speed_flag(kind, flag, idx_dir, keras_target, style_folders, tmp_path):
    cfg = config_lib.override(_config(kind, idx_dir, keras_target, style_folders), FLAGS[flag])
    workdir = str(tmp_path / "run")
    trainer, metrics = training.run_experiment(cfg, workdir, verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # the run restores the policy
    numbers = {k: v for k, v in metrics.items() if isinstance(v, float)}
    assert numbers and all(math.isfinite(v) for v in numbers.values()), metrics
    assert json.load(open(os.path.join(workdir, "config.json")))["runtime"][flag] is True
    if cfg.kind == "perturbation" and cfg.mode != "joint":
        _check_budget_in_float64(trainer.attacker, cfg.norm, cfg.eps)
    if cfg.kind == "defense":
        _check_budget_in_float64(lambda x, training: trainer.adversarial(x, tf.zeros(len(x), tf.int32)),
                                 cfg.norm, cfg.eps)


@pytest.mark.slow
def test_both_flags_together_around_the_zoo_target(idx_dir, keras_target, style_folders, tmp_path):
    cfg = config_lib.override(_config("perturbation_zoo_target", idx_dir, keras_target, style_folders),
                              {"runtime.jit_compile": True, "runtime.mixed_precision": True})
    trainer, metrics = training.run_experiment(cfg, str(tmp_path / "run"), verbose=0)
    assert math.isfinite(metrics["adv_accuracy"])
    _check_budget_in_float64(trainer.attacker, cfg.norm, cfg.eps)


@pytest.mark.parametrize("norm,eps", [("l2", 2.4), ("linf", 0.1)])
def test_budget_holds_under_mixed_precision_for_in_memory_models(norm, eps):
    """Built and called under mixed_float16: the wrappers keep x float32, so x_hat stays in the ball."""
    distribute.set_precision(True)
    try:
        classifier = build_classifier("small_cnn", input_shape=[28, 28, 1], num_classes=10, **TINY_CLASSIFIER)
        per_image = perturbation_model(unet((28, 28, 1), output_activation="tanh", **TINY_GENERATOR),
                                       "thresholded", norm, eps)
        universal = UniversalPerturbation(unet((28, 28, 1), output_activation="tanh", **TINY_GENERATOR), norm, eps)
        for attacker in (per_image, universal):
            trainer = PerturbationTrainer(attacker, classifier)
            _check_budget_in_float64(trainer, norm, eps)
            x = tf.random.uniform((4, 28, 28, 1), seed=1)
            trainer.compile(optimizer=distribute.loss_scale_wrapped(keras.optimizers.Adam(1e-3)))
            logs = trainer.train_on_batch(x, tf.constant([0, 1, 2, 3]), return_dict=True)
            assert all(math.isfinite(float(v)) for v in logs.values()), logs
            _check_budget_in_float64(trainer, norm, eps)
    finally:
        distribute.set_precision(False)
