"""TensorBoard shows what a run promises: per-epoch train and validation scalars and the image grids.

Each kind runs 2 epochs of 3 steps, a count that is no multiple of the batch-level update frequency,
and its event files are read back.
"""

import glob
import os
from collections import defaultdict

import numpy as np
import pytest
import tensorflow as tf

from tfadv import config as config_lib
from tfadv import experiments, training
from tfadv.callbacks import FailOnNonFinite
from tfadv.data.images import write_png
from tfadv.errors import TrainingDivergedError

EPOCHS, STEPS = 2, 3


def summaries(folder) -> dict[str, list[int]]:
    """tag -> sorted steps of every summary value in the event files under ``folder``."""
    steps = defaultdict(list)
    for path in glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                steps[value.tag].append(int(event.step))
    return {tag: sorted(s) for tag, s in steps.items()}


def run(cfg, overrides, workdir):
    cfg = config_lib.override(cfg, {"epochs": EPOCHS, "steps_per_epoch": STEPS, **overrides})
    training.run_experiment(cfg, str(workdir), verbose=0)
    logs = os.path.join(str(workdir), "logs")
    return {part: summaries(os.path.join(logs, part)) for part in ("train", "validation", "images")}


def labelled(name, idx_dir, **overrides):
    return experiments.get_experiment(name), {"data.idx_dir": idx_dir, "data.batch_size": 16, **overrides}


@pytest.fixture(scope="module")
def classifier_run(idx_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("classifier")
    events = run(*labelled("fashion_mnist_cnn", idx_dir, model_kwargs={"filters": [4, 8]}, test_time_flip=False),
                 workdir)
    return events, os.path.join(str(workdir), "model.keras")


def perturbation_overrides(target):
    return {"target": target, "generator_kwargs": {"depth": 1, "filters": 4}}


def assert_epoch_scalars(events, tags, validation=True):
    parts = ("train", "validation") if validation else ("train",)
    for part in parts:
        for tag in tags:
            assert events[part].get(f"epoch_{tag}") == list(range(EPOCHS)), (part, tag, events[part])


def assert_images(events, names):
    for name in names:
        assert events["images"].get(name) == list(range(1, EPOCHS + 1)), (name, events["images"])


def test_classifier_run(classifier_run):
    events, _ = classifier_run
    assert_epoch_scalars(events, ["loss", "accuracy"])
    assert events["train"]["epoch_learning_rate"] == [0, 1]
    assert_images(events, ["predictions"])


@pytest.mark.parametrize("name", ["fashion_mnist_unet_l2", "fashion_mnist_universal_l2", "fashion_mnist_unet_gan"])
def test_perturbation_run_with_a_keras_target(name, classifier_run, idx_dir, tmp_path):
    _, target = classifier_run
    overrides = perturbation_overrides(target)
    if "universal" in name:
        overrides["generator_kwargs"]["batch_norm"] = False
    events = run(*labelled(name, idx_dir, **overrides), tmp_path / "run")
    assert_epoch_scalars(events, ["loss", "adv_accuracy", "fooling_rate", "l2_max", "generator_nonfinite"]
                         + (["d_loss"] if "gan" in name else []))
    assert_images(events, ["attack"] + (["perturbation"] if "universal" in name else []))


@pytest.mark.parametrize("method,settings", [("joint", {"settings.generator_kwargs": {"depth": 1, "filters": 4}}),
                                             ("pgd", {"settings.steps": 1})])
def test_defense_run(method, settings, idx_dir, tmp_path):
    events = run(*labelled(f"fashion_mnist_{method}_defense_linf", idx_dir, model_kwargs={"filters": [4, 8]},
                           **settings), tmp_path / "run")
    assert_epoch_scalars(events, ["classifier_loss", "clean_accuracy", "adv_accuracy", "linf_max"]
                         + (["generator_loss"] if method == "joint" else []))
    assert_images(events, ["attack"])


def test_style_run(tmp_path):
    for folder, n in (("content", 6), ("style", 2)):
        os.makedirs(tmp_path / folder)
        for i in range(n):
            write_png(str(tmp_path / folder / f"{i}.png"), tf.random.stateless_uniform((20, 20, 3), (i, n)))
    cfg = experiments.get_experiment("style_gram_stack")
    events = run(cfg, {"content_dir": str(tmp_path / "content"), "style_dir": str(tmp_path / "style"), "size": 32,
                       "batch_size": 2, "vgg_weights": None, "network_kwargs": {"repeats": 2, "filters": [4]}},
                 tmp_path / "run")
    # A style run has no held-out pairs, hence no validation scalars.
    assert_epoch_scalars(events, ["loss", "content_loss", "style_loss"], validation=False)
    assert_images(events, ["content", "style", "output"])


def test_a_diverging_generator_stops_the_run_before_anything_is_saved(classifier_run, idx_dir, tmp_path):
    """A generator driven to NaN: its budget would zero the NaN delta (x_hat = x, a finite loss) and the run
    would export an identity map; the raw-output check stops it with a message naming the generator."""
    _, target = classifier_run
    cfg, overrides = labelled("fashion_mnist_unet_l2", idx_dir, **perturbation_overrides(target))
    overrides.update({"optimizer.learning_rate": 1e38, "optimizer.warmup_epochs": 0.0})
    with pytest.raises(TrainingDivergedError, match="generator's raw output holds .* NaN/Inf"):
        run(cfg, overrides, tmp_path / "run")
    assert not {"attacker.keras", "metrics.json"} & set(os.listdir(tmp_path / "run"))


def test_a_nan_loss_stops_the_run():
    check = FailOnNonFinite()
    check.on_train_batch_end(0, {"loss": np.float32(1.5), "generator_nonfinite": np.float32(0.0)})  # healthy
    with pytest.raises(TrainingDivergedError, match="epoch 1, batch 3: classifier_loss is nan"):
        check.on_train_batch_end(2, {"classifier_loss": np.float32("nan"), "clean_accuracy": np.float32(0.5)})
