"""SavedModel export with a fixed ``serve`` signature (the zoo contract).

Every tfadv SavedModel has an endpoint ``serve`` (also ``serving_default``)
taking float32 NHWC images in [0, 1]: classifiers return logits, perturbation
models return x_hat in [0, 1]. Check one with plain TensorFlow:

    loaded = tf.saved_model.load(path)      # keep a reference (see KERAS3-NOTES)
    logits = loaded.serve(images)
"""

from typing import Callable, Sequence

import keras
import tensorflow as tf

from tfadv import __version__, evaluation, zoo
from tfadv import data as data_lib
from tfadv.config import to_dict
from tfadv.errors import ConfigError


def image_spec(shape: Sequence[int], name: str = "images") -> tf.TensorSpec:
    """The serving input spec for a batch of images of ``shape`` = (H, W, C)."""
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ConfigError(f"Serving image shape must be (H, W, C) positive ints. Received: {shape!r}")
    return tf.TensorSpec((None,) + shape, tf.float32, name=name)


def write_saved_model(export_dir: str, serve_fn: Callable, input_signature: Sequence[tf.TensorSpec],
                      track: Sequence = ()) -> None:
    """Writes a SavedModel whose ``serve`` / ``serving_default`` endpoint is ``serve_fn``.

    Args:
        export_dir: destination; must not exist yet. Use :func:`tfadv.zoo.staging`
            to write into the zoo atomically.
        serve_fn: function of the input tensors, traced with ``input_signature``.
        input_signature: one ``tf.TensorSpec`` per input.
        track: Keras models / layers whose variables ``serve_fn`` uses.
    """
    archive = keras.export.ExportArchive()
    for resource in track:
        archive.track(resource)
    archive.add_endpoint("serve", serve_fn, input_signature=list(input_signature))
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
    archive = keras.export.ExportArchive()
    archive.track(attacker)
    archive.add_endpoint("serve", lambda images: attacker(images, training=False), [image_spec(image_shape)])
    if hasattr(attacker, "perturbation"):
        archive.add_endpoint("perturbation", lambda: attacker.perturbation(training=False), [])
    archive.write_out(export_dir, verbose=False)


def export_run(workdir: str, name: str, zoo_dir: str | None = None, overwrite: bool = False,
               source: str | None = None, idx_dir: str | None = None) -> dict:
    """Exports a training run into the zoo as entry ``name``, measured from the exported SavedModel.

    The metrics recorded are those of ``tf.saved_model.load(...).serve`` on the
    run's eval split, i.e. exactly what a user checking the registry gets.
    """
    cfg, model = evaluation.load_run(workdir)
    data_cfg = cfg.data
    ds, info = data_lib.load(data_cfg.dataset, data_cfg.eval_split, batch_size=256,
                             source=source or data_cfg.source, idx_dir=idx_dir or data_cfg.idx_dir,
                             tfds_data_dir=data_cfg.tfds_data_dir)
    common = {"split": data_cfg.eval_split, "data_source": f"{info.source}:{info.location}",
              "command": f"tfadv-evaluate --zoo_name={name} --split={data_cfg.eval_split}"}
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
            kind, extra = cfg.kind, {"output": "logits"}
        metrics = {k: round(v, 6) if isinstance(v, float) else v for k, v in measured.items()}
        input_shape = list(info.spec.image_shape)
        return stage.commit(kind=kind, dataset=data_cfg.dataset, metrics={**metrics, **common},
                            config=to_dict(cfg), input_shape=input_shape,
                            params=model.count_params(), tfadv_version=__version__, **extra)
