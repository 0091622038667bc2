"""Publishing a training run into the zoo: staged, measured from the exported SavedModel, then committed.

    tfadv.export.export_run("runs/fashion_mnist_cnn", "fashion_mnist_small_cnn")

The SavedModel writers (the ``serve`` contract) live in :mod:`tfadv.savedmodel`
(import them from there); the run's task says what its artifact becomes. Check an
entry with plain TensorFlow:

    loaded = tf.saved_model.load(path)      # keep a reference (see KERAS3-NOTES)
    logits = loaded.serve(images)
"""

import datetime
import json
import os

import keras
import tensorflow as tf

from tfadv import __version__, evaluation, runs, savedmodel, tasks, zoo
from tfadv import data as data_lib
from tfadv.config import to_dict
from tfadv.data import own as own_lib
from tfadv.errors import ZooError
from tfadv.savedmodel import image_spec, write_saved_model
from tfadv.targets import load_entry_target, load_target, target_sha256


def _training_figures(workdir: str, companion: bool = False) -> dict:
    """train_seconds and epochs_run from the run's metrics.json, when present (kept for the record), and
    resumed_from_epoch when the run was killed and resumed (the figures then cover only the epochs after it); a
    companion entry's training is its run's, recorded once, on the run's own entry."""
    if companion:
        return {}
    path = os.path.join(workdir, "metrics.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        run = json.load(f)
    return {k: run[k] for k in ("train_seconds", "epochs_run", "resumed_from_epoch") if k in run}


def export_run(workdir: str, name: str, zoo_dir: str | None = None, overwrite: bool = False,
               source: str | None = None, idx_dir: str | None = None, data=None) -> dict:
    """Exports a training run into the zoo as entry ``name``, measured from the exported SavedModel.

    The run's task (:mod:`tfadv.tasks`) says what its artifact becomes: the
    registry kind, the SavedModel writer, the kind's fields, what an attack is
    measured against, and companion entries (a joint defense's co-trained
    generator, ``<name>_generator``, exported after the classifier it is
    measured against: the classifier entry is complete on its own if that
    step fails). The metrics recorded are those of
    ``tf.saved_model.load(...).serve`` on the run's eval split, i.e. exactly
    what a user checking the registry gets. A run on your own data given in Python (arrays, a
    ``tf.data.Dataset``) is measured on the test part of the same ``data`` passed again; one on an image
    folder reads the folder again.
    """
    cfg, model = runs.load_run(workdir)
    task = tasks.get_task(cfg.kind)
    data = _eval_data(cfg, source, idx_dir, data) if task.labelled else None
    target = task.attack_target(cfg)
    fields = task.entry_fields(cfg)
    recorded = target_sha256(target, zoo_dir) if target else None
    if recorded:  # a file target: loading it later runs it; record what it was
        fields["target_sha256"] = recorded
    entry = _publish(name, task, task.zoo_kind(cfg), model, cfg, workdir, data, fields,
                     target=load_target(target, zoo_dir) if target else None, zoo_dir=zoo_dir, overwrite=overwrite)
    for companion in task.companions(cfg):
        path = os.path.join(workdir, companion.artifact)
        if not os.path.isfile(path):
            raise ZooError(f"Run {workdir!r} has no {companion.artifact}: entry {name + companion.suffix!r} cannot "
                           f"be exported (the entry {name!r} was).")
        _publish(name + companion.suffix, task, companion.zoo_kind, keras.saving.load_model(path, safe_mode=True),
                 cfg, workdir, data, {**companion.fields, "target": name}, target=load_target(name, zoo_dir),
                 zoo_dir=zoo_dir, overwrite=overwrite, companion=True)
    return entry


def _eval_data(cfg, source, idx_dir, own=None):
    """The run's eval split (batch 256) and how it was read: what the registry's figures are measured on."""
    data_cfg = cfg.data
    if data_cfg.dataset == own_lib.OWN:
        own = own_lib.from_arrays(own, data_cfg.class_names, holdout=data_cfg.holdout) if own is not None else None
        return tasks.load_split(data_cfg, data_cfg.eval_split, training=False, own=own, batch_size=256)
    return data_lib.load(data_cfg.dataset, data_cfg.eval_split, batch_size=256, source=source or data_cfg.source,
                         idx_dir=idx_dir or data_cfg.idx_dir, tfds_data_dir=data_cfg.tfds_data_dir)


def _publish(name, task, zoo_kind, model, cfg, workdir, data, fields, *, target, zoo_dir, overwrite,
             companion=False):
    """Stages ``model`` as entry ``name`` of ``zoo_kind``, measures the staged SavedModel (against ``target``,
    for attacks) and commits it. A companion entry does not repeat its run's training time."""
    image_shape = list(data[1].spec.image_shape) if data else None
    with zoo.staging(name, zoo_dir, overwrite=overwrite) as stage:
        savedmodel.write_entry(zoo_kind, stage.path, model, image_shape)
        loaded = tf.saved_model.load(stage.path)
        if data is None:
            metrics = task.exported_figures(loaded.serve, cfg, workdir)
            common = {}
        else:
            ds, info = data
            measured = evaluation.measure_entry(zoo_kind, loaded.serve, ds, target,
                                                getattr(cfg, "target_class", None))
            metrics = {**_rounded(measured), **_training_figures(workdir, companion),
                       "split": cfg.data.eval_split, "data_source": f"{info.source}:{info.location}",
                       "command": f"tfadv-evaluate --zoo_name={name} --split={cfg.data.eval_split}"
                       if cfg.data.dataset != own_lib.OWN else  # your own data: the run reads it again
                       f"tfadv-evaluate --workdir={workdir} --split={cfg.data.eval_split}"}
            common = {"dataset": cfg.data.dataset, "input_shape": image_shape}
        return stage.commit(**{"kind": zoo_kind, **common, "metrics": metrics, "config": to_dict(cfg),
                               "selection": selection(cfg, workdir), "params": model.count_params(),
                               "tfadv_version": __version__, **fields})


def _rounded(measured: dict) -> dict:
    """Measured figures with floats rounded to 6 decimals, as the registry stores them."""
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in measured.items()}


TEST_SELECTED = {"split": "test", "note": "trained before held-out validation: recipe and epochs were chosen with "
                 "the test split as validation data; figures kept"}


def selection(cfg, workdir: str | None = None) -> dict:
    """The registry's ``selection`` field: which split chose the recipe and epochs (and so, which figures are
    held out). Configs with ``data.validation_split`` validate on it; older ones validated on the test split."""
    if cfg.kind == "style":
        return {"split": None, "what": "no data split: the recipe (loss weights, rate, steps) was chosen on the "
                "training losses and panels of training images; held-out images are only measured afterwards "
                "(tools/evaluate_style.py)"}
    split = getattr(cfg.data, "validation_split", None)
    if split:
        return {"split": split, "what": "validation during training, recipe and epoch choice"}
    if workdir and _declares_no_validation(workdir):
        return {"split": None, "what": "no validation during training (data.validation_split: null); the test "
                                       "split was measured once, at the end"}
    return dict(TEST_SELECTED)


def _declares_no_validation(workdir: str) -> bool:
    """Whether the run's config.json says ``validation_split: null`` (older configs lack the field)."""
    try:
        with open(os.path.join(workdir, "config.json")) as f:
            data = json.load(f).get("data", {})
    except (OSError, ValueError, AttributeError):
        return False
    return "validation_split" in data and data["validation_split"] is None


GUARD_REASON = "in-graph input guard"


def reguard(name: str, zoo_dir: str | None = None, idx_dir: str | None = None) -> dict:
    """Re-exports entry ``name`` behind the in-graph input guard of :func:`write_saved_model`, without retraining.

    For entries exported before ``serve`` checked its input. The old SavedModel's
    functions are wrapped as they are (every endpoint kept; only ``serve`` takes
    images, so only it is guarded), written through :func:`tfadv.zoo.staging`,
    and re-measured on the entry's split as the export measured it. Unless every
    figure equals the registry's, nothing is replaced (``ZooError``). The entry
    keeps its fields and ``created`` date; ``sha256`` changes and ``reexported``
    records the date, the reason and this command.
    """
    zoo_dir = zoo_dir or zoo.default_zoo_dir()
    old_entry = zoo.entry(name, zoo_dir)
    if old_entry["kind"] not in ("classifier", "defended_classifier", "perturbation", "universal"):
        raise ZooError(f"Zoo entry {name!r} is of kind {old_entry['kind']!r}: only image -> logits / x_hat "
                       "entries can be re-guarded.")
    old = tf.saved_model.load(zoo.verify(name, zoo_dir))
    extra = {key: (getattr(old, key), []) for key in old.signatures if key not in ("serve", "serving_default")}
    if any(old.signatures[key].structured_input_signature[1] for key in extra):
        raise ZooError(f"Zoo entry {name!r}: endpoints besides serve take inputs ({', '.join(extra)}); "
                       "re-guarding handles input-free extra endpoints only.")
    ds, info = _registry_data(old_entry, idx_dir)
    with zoo.staging(name, zoo_dir, overwrite=True) as stage:
        write_saved_model(stage.path, old.serve, [image_spec(old_entry["input_shape"])], track=[old],
                          extra_endpoints=extra)
        loaded = tf.saved_model.load(stage.path)
        target = None if old_entry["kind"] in evaluation.CLASSIFIER_KINDS else load_entry_target(name, zoo_dir)
        measured = evaluation.measure_entry(old_entry["kind"], loaded.serve, ds, target,
                                            old_entry["config"].get("target_class"))
        changed = {k: (old_entry["metrics"].get(k), v) for k, v in _rounded(measured).items()
                   if old_entry["metrics"].get(k) != v}
        if changed:
            raise ZooError(f"Re-guarded {name!r} measures differently from its registry entry, so it was not "
                           f"replaced: {changed} (registry, re-measured).")
        fields = {k: v for k, v in old_entry.items() if k not in ("path", "sha256")}
        fields["reexported"] = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "why": GUARD_REASON, "previous_sha256": old_entry["sha256"], "tfadv_version": __version__,
            "command": f"python tools/reguard.py --name={name}",
            "measured": f"figures re-measured on {old_entry['metrics']['split']} ({info.source}:{info.location}): "
                        "identical"}
        return stage.commit(**fields)


def _registry_data(found: dict, idx_dir: str | None):
    """The split and data source an entry's figures were measured on, as the export read them (batch 256)."""
    source, _, location = found["metrics"].get("data_source", "auto:").partition(":")
    if source == "idx":
        idx_dir = idx_dir or location
    return data_lib.load(found["dataset"], found["metrics"]["split"], batch_size=256, source=source or "auto",
                         idx_dir=idx_dir if source == "idx" else None)
