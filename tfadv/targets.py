"""Target classifiers: loading the frozen model an attack is trained or measured against.

A target is named by a string, as configs and zoo entries record it: a
``.keras`` file, a SavedModel directory (endpoint ``serve`` or
``serving_default``) or a zoo entry name, optionally with a ``?pixel_scale=S``
suffix for a model that expects pixels in [0, S], or several of these joined by
``+``: an ensemble whose logits are the mean of its members' (what transfer
attacks train against). :func:`load_target` turns it into a frozen float32
images -> logits model. :mod:`tfadv.byo` checks a
user's own model against the contract.
"""

import os

import keras
import tensorflow as tf

from tfadv import models  # noqa: F401 - registers the serializable layers a .keras target needs
from tfadv import zoo
from tfadv.errors import ConfigError, ZooError, summary

ENDPOINTS = ("serve", "serving_default")
ENSEMBLE_SEPARATOR = "+"  # "a+b": the mean logits of targets a and b
PIXEL_SCALE_KEY = "?pixel_scale="  # a target string's suffix, so configs and zoo entries record the wrapping


def target_options(target: str) -> tuple[str, dict]:
    """(path or zoo name, options) of a target string ``PATH[?pixel_scale=S][&strip_softmax=1]``.

    The options travel in the string so that configs and zoo entries record how the model is wrapped:
    ``pixel_scale`` multiplies the [0, 1] input (a model that expects 0-255), ``strip_softmax`` removes a final
    softmax (the attacks need logits).
    """
    path, _, query = target.partition("?")
    options = {"pixel_scale": 1.0, "strip_softmax": False}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key == "pixel_scale":
            try:
                options[key] = float(value)
            except ValueError:
                raise ConfigError(f"Target {target!r}: pixel_scale must be a number, e.g. {path}{PIXEL_SCALE_KEY}255.")
            if not options[key] > 0:
                raise ConfigError(f"Target {target!r}: pixel_scale must be > 0. Received: {options[key]!r}")
        elif key == "strip_softmax" and value in ("0", "1"):
            options[key] = value == "1"
        else:
            raise ConfigError(f"Target {target!r}: unknown option {item!r}; a target takes pixel_scale=S and "
                              "strip_softmax=1.")
    return path, options


def with_options(target: str, *, pixel_scale: float | None = None, strip_softmax: bool | None = None) -> str:
    """``target`` with these options set (None: as it was); default-valued options are left out of the string."""
    path, options = target_options(target)
    if pixel_scale is not None:
        options["pixel_scale"] = float(pixel_scale)
    if strip_softmax is not None:
        options["strip_softmax"] = bool(strip_softmax)
    query = ([f"pixel_scale={options['pixel_scale']:g}"] if options["pixel_scale"] != 1.0 else []) + (
        ["strip_softmax=1"] if options["strip_softmax"] else [])
    return path + ("?" + "&".join(query) if query else "")


def with_pixel_scale(path: str, pixel_scale: float) -> str:
    """The target string for ``path`` wrapped to multiply its [0, 1] input by ``pixel_scale`` (1: unchanged)."""
    return with_options(path, pixel_scale=pixel_scale)


def split_target(target: str) -> tuple[str, float]:
    """(path or zoo name, pixel_scale) of a target string (see :func:`target_options`)."""
    path, options = target_options(target)
    return path, options["pixel_scale"]


def without_softmax(model, path: str):
    """``model`` (a Keras model loaded from ``path``: this copy only) with its final softmax removed: a trailing
    ``Softmax`` / ``Activation("softmax")`` layer is cut off, a last layer's ``activation="softmax"`` replaced by
    the identity. A SavedModel cannot be edited: ConfigError."""
    if not isinstance(model, keras.Model) or not model.layers:
        raise ConfigError(f"strip_softmax needs a .keras model; {path!r} is a SavedModel, whose graph cannot be "
                          "edited: export it without the final softmax.")
    last = model.layers[-1]
    softmax = keras.activations.softmax
    if isinstance(last, keras.layers.Softmax) or (isinstance(last, keras.layers.Activation)
                                                  and last.activation is softmax):
        return keras.Model(model.inputs, last.input, name=f"{model.name}_logits")
    if getattr(last, "activation", None) is softmax:
        last.activation = keras.activations.linear
        return model
    raise ConfigError(f"Target {path!r}: its last layer {last.name!r} ({type(last).__name__}) has no softmax to "
                      "strip.")


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
        self.image_shape = _endpoint_image_shape(loaded, self.endpoint)
        self.inner = keras.layers.TFSMLayer(path, call_endpoint=self.endpoint, trainable=False, dtype="float32")

    def call(self, images):
        outputs = self.inner(images)
        if isinstance(outputs, dict):
            if len(outputs) != 1:
                raise ConfigError(f"SavedModel {self.model_dir!r} endpoint {self.endpoint!r} returns "
                                  f"{len(outputs)} outputs ({', '.join(sorted(outputs))}); tfadv needs one: logits.")
            outputs = next(iter(outputs.values()))
        return outputs


def _endpoint_image_shape(loaded, endpoint: str) -> tuple | None:
    """(H, W, C) a SavedModel endpoint's single image input declares (None: any size, or not one image input)."""
    if endpoint == "serving_default":
        args, kwargs = loaded.signatures[endpoint].structured_input_signature
        specs = list(args) + list(kwargs.values())
    else:
        specs = list(getattr(getattr(loaded, endpoint), "input_signature", None) or [])
    if len(specs) != 1 or not isinstance(specs[0], tf.TensorSpec) or specs[0].shape.rank != 4:
        return None
    return tuple(specs[0].shape[1:])


def image_shape(target) -> tuple | None:
    """(H, W, C) of the images a loaded target (:func:`load_target`'s result) takes, as far as it says: None, or
    None in place of a side it leaves open (a fully convolutional model)."""
    if isinstance(target, PixelScale):
        return image_shape(target.classifier)
    if isinstance(target, Ensemble):
        return image_shape(target.members[0])
    if isinstance(target, SavedModelClassifier):
        return target.image_shape
    shape = getattr(target, "input_shape", None) if isinstance(target, keras.Model) else None
    return tuple(shape[1:]) if isinstance(shape, tuple) and len(shape) == 4 else None


class PixelScale(keras.layers.Layer):
    """Wraps a classifier that expects pixels in [0, ``scale``]: [0, 1] images are multiplied inside."""

    def __init__(self, classifier, scale: float, **kwargs):
        super().__init__(dtype="float32", trainable=False, **kwargs)
        self.classifier, self.scale = classifier, float(scale)

    def call(self, images):
        return self.classifier(images * self.scale)


class Ensemble(keras.layers.Layer):
    """Frozen classifiers as one: the mean of their logits (the logit ensemble of Liu et al. 2017 and Dong et al.
    2018), what a transfer attack trains against to fool models it never sees."""

    def __init__(self, members, **kwargs):
        super().__init__(dtype="float32", trainable=False, **kwargs)
        self.members = list(members)

    def call(self, images):
        return tf.add_n([tf.cast(member(images), tf.float32) for member in self.members]) / len(self.members)


def ensemble_members(target: str) -> list[str]:
    """The member target strings of ``target`` (one for a single target); an empty member is refused."""
    members = target.split(ENSEMBLE_SEPARATOR)
    if not all(member.strip() for member in members):
        raise ConfigError(f"Target {target!r}: an ensemble joins targets with '+', e.g. "
                          "fashion_mnist_small_cnn+fashion_mnist_cnn_gap; one is empty.")
    return [member.strip() for member in members]


def _names_a_zoo_entry(path: str, zoo_dir: str | None) -> bool:
    return "/" not in path and not path.endswith(".keras") and path in zoo.read_registry(zoo_dir)


def target_sha256(target: str, zoo_dir: str | None = None) -> str | None:
    """What an exported entry records for its target: a file's checksum; None for a zoo entry (verified on its
    own). An ensemble's members must all be zoo entries (their checksums are the zoo's)."""
    members = ensemble_members(target)
    if len(members) > 1:
        files = [m for m in members if not _names_a_zoo_entry(split_target(m)[0], zoo_dir)]
        if files:
            raise ConfigError(f"Ensemble target {target!r}: an exported entry's ensemble members must be zoo "
                              f"entries; {', '.join(files)} is not one.")
        return None
    path, _ = split_target(target)
    if _names_a_zoo_entry(path, zoo_dir):
        return None
    if not os.path.exists(path):
        raise ConfigError(f"Target {path!r} does not exist.")
    return zoo.file_sha256(path)


def load_entry_target(name: str, zoo_dir: str | None = None):
    """The classifier zoo entry ``name`` is measured against, verified like the entry itself.

    A zoo entry target is checksum-verified by the zoo. A file target (a
    .keras or SavedModel the attack was trained against) runs as code when
    loaded, so it loads only when its content matches the ``target_sha256``
    the export recorded; an entry without one is refused.
    """
    found = zoo.entry(name, zoo_dir)
    target = found.get("target")
    if not target:
        raise ZooError(f"Zoo entry {name!r} records no target classifier.")
    if len(ensemble_members(target)) > 1:  # members are zoo entries (target_sha256 refused anything else)
        return load_target(target, zoo_dir)
    path, pixel_scale = split_target(target)
    if _names_a_zoo_entry(path, zoo_dir):
        model = zoo.keras_layer(path, zoo_dir)
        return model if pixel_scale == 1.0 else PixelScale(model, pixel_scale)
    recorded = found.get("target_sha256")
    if not recorded:
        raise ZooError(f"Zoo entry {name!r} names the file {path!r} as its target but records no checksum for it: "
                       "loading it would run unverified code. Pass the target explicitly (--target) if you trust "
                       "it, or re-export the entry.")
    actual = zoo.file_sha256(path) if os.path.exists(path) else "missing"
    if actual != recorded:
        raise ZooError(f"Zoo entry {name!r}: its target {path!r} fails the recorded checksum ({recorded}; the "
                       f"file: {actual}); refused.")
    return load_target(target, zoo_dir)


def _loaded(path: str, load):
    """``load()``, with a file Keras or TensorFlow cannot load reported in one line naming it."""
    try:
        return load()
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - corrupt or unsafe files raise many types
        hint = (" A Lambda layer runs arbitrary code, so Keras' safe mode refuses it: rebuild the model without "
                "it (or register a custom layer)." if "Lambda" in str(e) or "safe_mode" in str(e) else "")
        raise ConfigError(f"Cannot load the target classifier {path!r} ({summary(e)}).{hint}") from None


def load_target(target: str, zoo_dir: str | None = None):
    """The frozen classifier an attack trains against: a .keras file, a SavedModel directory or a zoo entry name.

    Options in the string (:func:`target_options`): ``pixel_scale=S`` wraps a model that expects pixels in
    [0, S]; ``strip_softmax=1`` removes a .keras model's final softmax. Targets joined by ``+`` load as an
    :class:`Ensemble`.
    """
    members = ensemble_members(target)
    if len(members) > 1:
        return Ensemble([load_target(member, zoo_dir) for member in members], name="ensemble")
    path, options = target_options(target)
    pixel_scale = options["pixel_scale"]
    if path.endswith(".keras"):
        if not os.path.isfile(path):
            raise ConfigError(f"Target classifier file {path!r} does not exist.")
        model = _loaded(path, lambda: keras.saving.load_model(path, safe_mode=True))
        model = without_softmax(model, path) if options["strip_softmax"] else model
        model.trainable = False
    elif options["strip_softmax"]:
        raise ConfigError(f"strip_softmax needs a .keras model; {path!r} is not one (a SavedModel's graph or a zoo "
                          "entry cannot be edited).")
    elif is_saved_model_dir(path):
        model = _loaded(path, lambda: SavedModelClassifier(path))
    elif os.path.isdir(path):
        raise ConfigError(f"Target directory {path!r} holds no saved_model.pb: not a SavedModel.")
    else:
        model = zoo.keras_layer(path, zoo_dir)
    return model if pixel_scale == 1.0 else PixelScale(model, pixel_scale)
