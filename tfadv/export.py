"""SavedModel export with a fixed ``serve`` signature (the zoo contract).

Every tfadv SavedModel has an endpoint ``serve`` (also ``serving_default``)
taking float32 NHWC images in [0, 1]: classifiers return logits, perturbation
models return x_hat in [0, 1]. Check one with plain TensorFlow:

    loaded = tf.saved_model.load(path)      # keep a reference (see KERAS3-NOTES)
    logits = loaded.serve(images)
"""

import datetime
import json
import os
from typing import Callable, Sequence

import keras
import tensorflow as tf

from tfadv import __version__, evaluation, zoo
from tfadv import data as data_lib
from tfadv.config import to_dict
from tfadv.errors import ConfigError, ZooError
from tfadv.inputs import guarded


def image_spec(shape: Sequence[int], name: str = "images") -> tf.TensorSpec:
    """The serving input spec for a batch of images of ``shape`` = (H, W, C)."""
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ConfigError(f"Serving image shape must be (H, W, C) positive ints. Received: {shape!r}")
    return tf.TensorSpec((None,) + shape, tf.float32, name=name)


def write_saved_model(export_dir: str, serve_fn: Callable, input_signature: Sequence[tf.TensorSpec],
                      track: Sequence = (), extra_endpoints: dict | None = None) -> None:
    """Writes a SavedModel whose ``serve`` / ``serving_default`` endpoint is ``serve_fn``.

    Args:
        export_dir: destination; must not exist yet. Use :func:`tfadv.zoo.staging`
            to write into the zoo atomically.
        serve_fn: function of the input tensors, traced with ``input_signature``; the endpoint runs it behind
            :func:`tfadv.inputs.guarded` (empty batches, NaN/inf and values outside [0, 1] are refused).
        input_signature: one ``tf.TensorSpec`` per input.
        track: Keras models / layers whose variables ``serve_fn`` uses, or a loaded SavedModel (see :func:`reguard`).
        extra_endpoints: more endpoints, ``{name: (fn, input_signature)}``.
    """
    archive = keras.export.ExportArchive()
    for resource in track:
        archive.track(resource)
        if not isinstance(resource, keras.layers.Layer):  # a loaded SavedModel (re-guarding): list its variables
            for attribute in ("variables", "trainable_variables", "non_trainable_variables"):  # as Keras does
                getattr(archive._tf_trackable, attribute).extend(getattr(resource, attribute, ()))
    guarded_fn = guarded(serve_fn, [spec.name for spec in input_signature])  # empty / NaN / range checks
    archive.add_endpoint("serve", guarded_fn, input_signature=list(input_signature))  # first: serving_default
    for name, (fn, signature) in (extra_endpoints or {}).items():
        archive.add_endpoint(name, fn, input_signature=list(signature))
    archive.write_out(export_dir, verbose=False)


def write_classifier(export_dir: str, model: keras.Model) -> None:
    """Exports a [0, 1]-image -> logits Keras classifier under the zoo contract."""
    write_saved_model(export_dir, lambda images: model(images, training=False),
                      [image_spec(model.input_shape[1:])], track=[model])


def write_perturbation(export_dir: str, attacker: keras.Model, image_shape) -> None:
    """Exports an x -> x_hat model under the zoo contract (x_hat in [0, 1]).

    A universal attacker also gets a ``perturbation`` endpoint (no input)
    returning U [1, H, W, C], so U itself can be inspected or reused.
    """
    extra = {}
    if hasattr(attacker, "perturbation"):
        extra["perturbation"] = (lambda: attacker.perturbation(training=False), [])
    write_saved_model(export_dir, lambda images: attacker(images, training=False), [image_spec(image_shape)],
                      track=[attacker], extra_endpoints=extra)


def write_style(export_dir: str, network: keras.Model) -> None:
    """Exports a style network: ``serve(content, style)``, both float32 [B, S, S, 3] in [0, 1] -> image."""
    shape = network.output_shape[1:]
    write_saved_model(export_dir, lambda content, style: network({"content": content, "style": style},
                                                                  training=False),
                      [image_spec(shape, "content"), image_spec(shape, "style")], track=[network])


def _training_figures(workdir: str) -> dict:
    """train_seconds and epochs_run from the run's metrics.json, when present (kept for the record)."""
    path = os.path.join(workdir, "metrics.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        run = json.load(f)
    return {k: run[k] for k in ("train_seconds", "epochs_run") if k in run}


def export_run(workdir: str, name: str, zoo_dir: str | None = None, overwrite: bool = False,
               source: str | None = None, idx_dir: str | None = None) -> dict:
    """Exports a training run into the zoo as entry ``name``, measured from the exported SavedModel.

    The metrics recorded are those of ``tf.saved_model.load(...).serve`` on the
    run's eval split, i.e. exactly what a user checking the registry gets.
    """
    cfg, model = evaluation.load_run(workdir)
    if cfg.kind == "style":
        return _export_style_run(workdir, name, cfg, model, zoo_dir, overwrite)
    data_cfg = cfg.data
    ds, info = data_lib.load(data_cfg.dataset, data_cfg.eval_split, batch_size=256,
                             source=source or data_cfg.source, idx_dir=idx_dir or data_cfg.idx_dir,
                             tfds_data_dir=data_cfg.tfds_data_dir)
    common = {"split": data_cfg.eval_split, "data_source": f"{info.source}:{info.location}",
              "command": f"tfadv-evaluate --zoo_name={name} --split={data_cfg.eval_split}"}
    entry = _export_measured(workdir, name, cfg, model, ds, info, common, zoo_dir, overwrite)
    if cfg.kind == "defense" and cfg.method == "joint":
        _export_co_trained_generator(workdir, name, cfg, ds, info, zoo_dir, overwrite)
    return entry


def _export_measured(workdir, name, cfg, model, ds, info, common, zoo_dir, overwrite):
    """Stages, measures and commits a classifier or perturbation run's model as entry ``name``."""
    data_cfg = cfg.data
    with zoo.staging(name, zoo_dir, overwrite=overwrite) as stage:
        if cfg.kind == "perturbation":
            write_perturbation(stage.path, model, info.spec.image_shape)
            loaded = tf.saved_model.load(stage.path)
            measured = evaluation.measure_attack(loaded.serve, evaluation.load_target(cfg.target, zoo_dir), ds,
                                                 cfg.target_class, confusion=cfg.mode == "universal")
            kind = "universal" if cfg.mode == "universal" else "perturbation"
            extra = {"target": cfg.target, "output": "x_hat",
                     "budget": {"norm": cfg.norm, "eps": cfg.eps} if cfg.mode != "joint" else None}
            if kind == "universal":
                extra["endpoints"] = {"serve": "x -> x_hat", "perturbation": "() -> U [1, H, W, C]"}
        else:
            write_classifier(stage.path, model)
            loaded = tf.saved_model.load(stage.path)
            measured = evaluation.evaluate_classifier(loaded.serve, ds)
            kind = "defended_classifier" if cfg.kind == "defense" else "classifier"
            extra = {"output": "logits"}
        metrics = _rounded(measured)
        metrics.update(_training_figures(workdir))
        input_shape = list(info.spec.image_shape)
        return stage.commit(kind=kind, dataset=data_cfg.dataset, metrics={**metrics, **common},
                            config=to_dict(cfg), input_shape=input_shape, selection=selection(cfg, workdir),
                            params=model.count_params(), tfadv_version=__version__, **extra)


def _rounded(measured: dict) -> dict:
    """Measured figures with floats rounded to 6 decimals, as the registry stores them."""
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in measured.items()}


TEST_SELECTED = {"split": "test", "note": "trained before held-out validation: recipe and epochs were chosen with "
                 "the test split as validation data; figures kept"}


def selection(cfg, workdir: str | None = None) -> dict:
    """The registry's ``selection`` field: which split chose the recipe and epochs (and so, which figures are
    held out). Configs with ``data.validation_split`` validate on it; older ones validated on the test split."""
    if cfg.kind == "style":
        return {"split": None, "what": "no data split: a style entry records its training losses, not test figures"}
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


def co_trained_name(defended_name: str) -> str:
    """The zoo name of a joint defence's co-trained generator."""
    return f"{defended_name}_generator"


def _export_co_trained_generator(workdir, name, cfg, ds, info, zoo_dir, overwrite):
    """A joint defence's generator (``attacker.keras``) as entry ``<name>_generator``, targeting entry ``name``.

    The defence report's co-trained row then comes from the zoo like every other
    attack. Exported after the classifier it is measured against; the classifier
    entry is complete on its own if this step fails.
    """
    generator_name = co_trained_name(name)
    path = os.path.join(workdir, "attacker.keras")
    if not os.path.isfile(path):
        raise ZooError(f"Joint defence run {workdir!r} has no attacker.keras: its co-trained generator cannot be "
                       f"exported (the classifier entry {name!r} was).")
    attacker = keras.saving.load_model(path, safe_mode=True)
    with zoo.staging(generator_name, zoo_dir, overwrite=overwrite) as stage:
        write_perturbation(stage.path, attacker, info.spec.image_shape)
        loaded = tf.saved_model.load(stage.path)
        measured = evaluation.measure_attack(loaded.serve, zoo.load(name, zoo_dir).serve, ds)
        metrics = _rounded(measured)
        metrics.update({"split": cfg.data.eval_split, "data_source": f"{info.source}:{info.location}",
                        "command": f"tfadv-evaluate --zoo_name={generator_name} --split={cfg.data.eval_split}"})
        return stage.commit(kind="perturbation", dataset=cfg.data.dataset, metrics=metrics, config=to_dict(cfg),
                            input_shape=list(info.spec.image_shape), params=attacker.count_params(),
                            tfadv_version=__version__, target=name, output="x_hat", co_trained=True,
                            selection=selection(cfg, workdir),
                            budget={"norm": cfg.norm, "eps": cfg.eps})


def _export_style_run(workdir, name, cfg, network, zoo_dir, overwrite):
    """Style networks have no accuracy: the entry records the run's final losses and the VGG weights used."""
    with zoo.staging(name, zoo_dir, overwrite=overwrite) as stage:
        write_style(stage.path, network)
        loaded = tf.saved_model.load(stage.path)
        probe = tf.random.stateless_uniform((1,) + tuple(network.output_shape[1:]), (0, 0))
        output = loaded.serve(probe, probe)
        with open(os.path.join(workdir, "metrics.json")) as f:
            metrics = json.load(f)
        metrics["output_range"] = [float(tf.reduce_min(output)), float(tf.reduce_max(output))]
        return stage.commit(kind="style", dataset=f"folders:{cfg.content_dir}|{cfg.style_dir}", metrics=metrics,
                            config=to_dict(cfg), input_shape=list(network.output_shape[1:]),
                            output="stylised image", params=network.count_params(), tfadv_version=__version__,
                            selection=selection(cfg, workdir),
                            endpoints={"serve": "(content, style) -> image"})


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
        if old_entry["kind"] in ("classifier", "defended_classifier"):
            measured = evaluation.evaluate_classifier(loaded.serve, ds)
        else:
            measured = evaluation.measure_attack(loaded.serve, evaluation.load_target(old_entry["target"], zoo_dir), ds,
                                                 old_entry["config"].get("target_class"),
                                                 confusion=old_entry["kind"] == "universal")
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
