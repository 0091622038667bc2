"""Target classifiers: loading the frozen model an attack is trained or measured against.

A target is named by a string, as configs and zoo entries record it: a
``.keras`` file, a SavedModel directory (endpoint ``serve`` or
``serving_default``) or a zoo entry name, optionally with a ``?pixel_scale=S``
suffix for a model that expects pixels in [0, S]. :func:`load_target` turns it
into a frozen float32 images -> logits model. :mod:`tfadv.byo` checks a
user's own model against the contract.
"""

import os

import keras
import tensorflow as tf

from tfadv import models  # noqa: F401 - registers the serializable layers a .keras target needs
from tfadv import zoo
from tfadv.errors import ConfigError

ENDPOINTS = ("serve", "serving_default")
PIXEL_SCALE_KEY = "?pixel_scale="  # a target string's suffix, so configs and zoo entries record the wrapping


def with_pixel_scale(path: str, pixel_scale: float) -> str:
    """The target string for ``path`` wrapped to multiply its [0, 1] input by ``pixel_scale`` (1: unchanged)."""
    return path if float(pixel_scale) == 1.0 else f"{path}{PIXEL_SCALE_KEY}{float(pixel_scale):g}"


def split_target(target: str) -> tuple[str, float]:
    """(path or zoo name, pixel_scale) of a target string made by :func:`with_pixel_scale`."""
    path, _, scale = target.partition(PIXEL_SCALE_KEY)
    try:
        pixel_scale = float(scale) if scale else 1.0
    except ValueError:
        raise ConfigError(f"Target {target!r}: pixel_scale must be a number, e.g. {path}{PIXEL_SCALE_KEY}255.")
    if pixel_scale <= 0:
        raise ConfigError(f"Target {target!r}: pixel_scale must be > 0. Received: {pixel_scale!r}")
    return path, pixel_scale


def is_saved_model_dir(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb"))


class SavedModelClassifier(keras.layers.Layer):
    """A SavedModel directory as a frozen float32 layer: images -> logits (a one-output dict is unwrapped)."""

    def __init__(self, path: str, **kwargs):
        super().__init__(dtype="float32", trainable=False, **kwargs)
        loaded = tf.saved_model.load(path)
        found = [e for e in ENDPOINTS if (e in loaded.signatures if e == "serving_default" else hasattr(loaded, e))]
        if not found:
            raise ConfigError(f"SavedModel {path!r} has neither a 'serve' endpoint nor a 'serving_default' "
                              f"signature (signatures: {sorted(loaded.signatures) or 'none'}).")
        self.model_dir, self.endpoint = path, found[0]
        self.inner = keras.layers.TFSMLayer(path, call_endpoint=self.endpoint, trainable=False, dtype="float32")

    def call(self, images):
        outputs = self.inner(images)
        if isinstance(outputs, dict):
            if len(outputs) != 1:
                raise ConfigError(f"SavedModel {self.model_dir!r} endpoint {self.endpoint!r} returns "
                                  f"{len(outputs)} outputs ({', '.join(sorted(outputs))}); tfadv needs one: logits.")
            outputs = next(iter(outputs.values()))
        return outputs


class PixelScale(keras.layers.Layer):
    """Wraps a classifier that expects pixels in [0, ``scale``]: [0, 1] images are multiplied inside."""

    def __init__(self, classifier, scale: float, **kwargs):
        super().__init__(dtype="float32", trainable=False, **kwargs)
        self.classifier, self.scale = classifier, float(scale)

    def call(self, images):
        return self.classifier(images * self.scale)


def load_target(target: str, zoo_dir: str | None = None):
    """The frozen classifier an attack trains against: a .keras file, a SavedModel directory or a zoo entry name.

    A ``?pixel_scale=S`` suffix (:func:`with_pixel_scale`) wraps a model that expects pixels in [0, S].
    """
    path, pixel_scale = split_target(target)
    if path.endswith(".keras"):
        if not os.path.isfile(path):
            raise ConfigError(f"Target classifier file {path!r} does not exist.")
        model = keras.saving.load_model(path, safe_mode=True)
        model.trainable = False
    elif is_saved_model_dir(path):
        model = SavedModelClassifier(path)
    elif os.path.isdir(path):
        raise ConfigError(f"Target directory {path!r} holds no saved_model.pb: not a SavedModel.")
    else:
        model = zoo.keras_layer(path, zoo_dir)
    return model if pixel_scale == 1.0 else PixelScale(model, pixel_scale)
