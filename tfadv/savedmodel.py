"""Writing SavedModels under the zoo contract: one ``serve`` endpoint, guarded, float32 NHWC images in [0, 1].

Every tfadv SavedModel has an endpoint ``serve`` (also ``serving_default``)
taking float32 NHWC images in [0, 1]: classifiers return logits, perturbation
models return x_hat in [0, 1], style networks take (content, style). The
endpoint refuses anything else (:func:`tfadv.inputs.guarded`). Check one with
plain TensorFlow:

    loaded = tf.saved_model.load(path)      # keep a reference (see KERAS3-NOTES)
    logits = loaded.serve(images)

The writers here only write a folder; :mod:`tfadv.export` turns a training run
into a measured zoo entry with them.
"""

from typing import Callable, Sequence

import keras
import tensorflow as tf

from tfadv.errors import ConfigError
from tfadv.inputs import guarded

_VARIABLE_LISTS = ("variables", "trainable_variables", "non_trainable_variables")  # what ExportArchive tracks


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
            for attribute in _VARIABLE_LISTS:  # as Keras does
                getattr(archive._tf_trackable, attribute).extend(getattr(resource, attribute, ()))
    _list_each_weight_once(archive)
    guarded_fn = guarded(serve_fn, [spec.name for spec in input_signature])  # empty / NaN / range checks
    archive.add_endpoint("serve", guarded_fn, input_signature=list(input_signature))  # first: serving_default
    for name, (fn, signature) in (extra_endpoints or {}).items():
        archive.add_endpoint(name, fn, input_signature=list(signature))
    archive.write_out(export_dir, verbose=False)


def _list_each_weight_once(archive) -> None:
    """Lists the tf.Variables behind tracked keras.Variables, so the SavedModel stores each weight once.

    ``track`` lists the keras.Variable wrappers and the endpoints capture the tf.Variables they wrap: two
    objects per weight, which the checkpoint cannot deduplicate, so every weight was written twice (keras-team/
    keras#23553, open in Keras 3.15: a 2.2 MB classifier exported as 4.4 MB and loaded twice into memory).
    """
    trackable = archive._tf_trackable
    for attribute in _VARIABLE_LISTS:
        listed = [v.value if isinstance(v, keras.Variable) else v for v in getattr(trackable, attribute)]
        setattr(trackable, attribute, listed)  # a new list: a tracked list refuses item replacement


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


def write_entry(zoo_kind: str, export_dir: str, model: keras.Model, image_shape=None) -> None:
    """Writes ``model`` with the writer of registry kind ``zoo_kind`` (style networks need no ``image_shape``)."""
    if zoo_kind in ("classifier", "defended_classifier"):
        write_classifier(export_dir, model)
    elif zoo_kind in ("perturbation", "universal"):
        write_perturbation(export_dir, model, image_shape)
    elif zoo_kind == "style":
        write_style(export_dir, model)
    else:
        raise ConfigError(f"No SavedModel writer for zoo kind {zoo_kind!r}.")
