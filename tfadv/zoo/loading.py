"""Loading: the reader's side of the zoo, an entry checked against its checksum and then served.

Owns :func:`verify` (the entry's files exist, lie inside the zoo and match the registry's ``sha256``),
:func:`load` (``tf.saved_model.load`` behind :class:`ServedModel`, whose ``serve`` checks the image contract)
and :func:`keras_layer` (a frozen ``keras.layers.TFSMLayer``, how trainers use a zoo classifier as their
target). TensorFlow and Keras are imported inside the functions, so reading the registry stays light.

:func:`verify` is here, above the transactions, because a reader that finds a checksum failing beside a dead
export's staging folder first runs that export's recovery (:mod:`tfadv.zoo.transactions`) and gets the previous
entry back: the reader depends on the writer's protocol, never the reverse (dependencies run store <- integrity
<- transactions <- loading <- copying).
"""

import os

from tfadv.errors import ZooError, summary
from tfadv.zoo.integrity import tree_sha256
from tfadv.zoo.store import entry, path_of
from tfadv.zoo.transactions import _recovered_a_killed_export


def verify(name: str, zoo_dir: str | None = None) -> str:
    """Checks that entry ``name``'s files exist and match its sha256; returns its path."""
    found = entry(name, zoo_dir)
    if found["path"] is None:
        raise ZooError(f"Zoo entry {name!r} is a recipe with no artifact: {found.get('note', 'train it first')}.")
    path = path_of(name, zoo_dir)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ZooError(f"Zoo entry {name!r}: no SavedModel at {path!r} (saved_model.pb missing).")
    actual = tree_sha256(path)
    if actual != found["sha256"] and _recovered_a_killed_export(name, zoo_dir):
        actual = tree_sha256(path)  # a killed commit had left its SavedModel there: the old one is back
    if actual != found["sha256"]:
        raise ZooError(f"Zoo entry {name!r} fails its checksum: registry says {found['sha256']}, "
                       f"files at {path!r} hash to {actual}. The artifact was modified or corrupted; "
                       "re-export it or restore it from version control.")
    return path


class ServedModel:
    """A loaded zoo entry: ``serve(images)`` checks the image contract, then calls the SavedModel's ``serve``.

    ``serve`` raises :class:`~tfadv.errors.InputError` naming the problem
    (rank, size, channels, dtype, empty batch, NaN/inf, values outside [0, 1])
    before TensorFlow sees the batch. ``saved_model`` is the plain
    ``tf.saved_model.load`` object (referenced by ``serve`` too, so keeping
    only ``serve`` is safe) and ``entry`` the registry entry. ``serve`` is
    one function object for the model's lifetime, so traced attacks cache it.
    """

    def __init__(self, name: str, saved_model, entry: dict):
        from tfadv.inputs import check_images

        self.name, self.saved_model, self.entry = name, saved_model, entry
        shape = entry.get("input_shape")

        def serve(*images):  # style entries take (content, style)
            # Calling through saved_model keeps it referenced even when only .serve is kept.
            return saved_model.serve(*[check_images(x, shape, name=f"{name}: images") for x in images])

        self.serve = serve

    def __getattr__(self, attribute):  # other endpoints (e.g. a universal entry's perturbation())
        return getattr(self.saved_model, attribute)


def load(name: str, zoo_dir: str | None = None, check: bool = True) -> ServedModel:
    """Loads entry ``name`` with ``tf.saved_model.load`` after verifying its checksum.

    Returns a :class:`ServedModel`: ``.serve(images)`` with the image contract
    checked, ``.saved_model`` the plain loaded object.
    """
    import tensorflow as tf

    path = verify(name, zoo_dir) if check else path_of(name, zoo_dir)
    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 - TF raises many types for a corrupt model
        raise ZooError(f"Zoo entry {name!r}: the SavedModel at {path!r} cannot be loaded "
                       f"({summary(e)}).") from None
    if not hasattr(loaded, "serve"):
        raise ZooError(f"Zoo entry {name!r}: the SavedModel at {path!r} has no 'serve' endpoint.")
    return ServedModel(name, loaded, entry(name, zoo_dir))


def keras_layer(name: str, zoo_dir: str | None = None):
    """Entry ``name`` (checksum verified) as a frozen ``keras.layers.TFSMLayer`` calling ``serve``.

    This is how trainers use a zoo classifier as their attack target: the very
    artifact users download, not a re-trained copy.
    """
    import keras

    path = verify(name, zoo_dir)
    try:
        # dtype float32: the serve signature takes float32 images, also under a mixed_float16 global policy.
        return keras.layers.TFSMLayer(path, call_endpoint="serve", trainable=False, name=name.replace(".", "_"),
                                      dtype="float32")
    except Exception as e:  # noqa: BLE001 - TF raises many types for a corrupt model
        raise ZooError(f"Zoo entry {name!r}: the SavedModel at {path!r} cannot be loaded "
                       f"({summary(e)}).") from None
