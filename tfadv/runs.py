"""A finished run folder (see :mod:`tfadv.training`): read its config and trained artifact back, and measure it.

    cfg, model = runs.load_run("runs/fashion_mnist_cnn")
    runs.evaluate_run("runs/fashion_mnist_cnn", split="test")

The artifact is the one the run's task saved (``model.keras``, or
``attacker.keras`` for perturbation runs); a defense run's is its defended
classifier.
"""

import os

import keras

from tfadv import data as data_lib
from tfadv import evaluation, experiments, tasks
from tfadv.data import own as own_lib
from tfadv.errors import ZooError, summary
from tfadv.targets import load_target


def load_run(workdir: str):
    """Returns (config, trained model) of a training run folder."""
    cfg = experiments.load_json(os.path.join(workdir, "config.json"))
    path = os.path.join(workdir, tasks.get_task(cfg.kind).artifact)
    if not os.path.isfile(path):
        raise ZooError(f"No trained model at {path!r}: train the run first (tfadv-train --workdir={workdir}).")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - corrupt archives raise many types
        raise ZooError(f"Cannot load {path!r} ({summary(e)}).") from None
    return cfg, model


def evaluate_run(workdir: str, split="test", source="auto", idx_dir=None, tfds_data_dir=None,
                 batch_size=256) -> dict:
    """Measures a run's trained model on ``split`` of its dataset, as its zoo entry would be measured."""
    cfg, model = load_run(workdir)
    task = tasks.get_task(cfg.kind)
    if not task.labelled:
        raise ZooError(f"Run {workdir!r} is a {cfg.kind} run: it has no labelled split to measure "
                       "(its metrics.json records the training losses).")
    if cfg.data.dataset == own_lib.OWN:  # your own image folder, read and split again as the run did
        ds, info = tasks.load_split(cfg.data, split, training=False, batch_size=batch_size)
    else:
        ds, info = data_lib.load(cfg.data.dataset, split, batch_size=batch_size, source=source, idx_dir=idx_dir,
                                 tfds_data_dir=tfds_data_dir)
    read = {"workdir": workdir, "dataset": cfg.data.dataset, "split": split,
            "data_source": f"{info.source}:{info.location}"}
    target_name = task.attack_target(cfg)
    if target_name is None:
        return {**read, **evaluation.measure_entry(task.zoo_kind(cfg), model, ds)}
    metrics = evaluation.measure_entry(task.zoo_kind(cfg), model, ds, load_target(target_name),
                                       getattr(cfg, "target_class", None))
    return {**read, "target": target_name, **metrics}
