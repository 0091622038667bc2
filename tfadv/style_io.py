"""Stylising image files with an exported style SavedModel (the library side of tools/stylize.py)."""

import os

import tensorflow as tf

from tfadv import zoo
from tfadv.callbacks import write_png
from tfadv.errors import DataUnavailableError, ZooError


def _read_image(path: str, size: int):
    try:
        data = tf.io.read_file(path)
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
        raise DataUnavailableError(f"Cannot read image {path!r}: {str(e).splitlines()[0][:160]}") from None
    return tf.image.resize(tf.cast(image, tf.float32) / 255.0, (size, size), antialias=True)[None]


def stylize_file(content: str, style: str, output: str, saved_model: str | None = None,
                 zoo_name: str | None = None, zoo_dir: str | None = None) -> str:
    """Reads two image files, runs the style network's ``serve`` at its size, writes a PNG; returns its path."""
    if zoo_name:
        loaded = zoo.load(zoo_name, zoo_dir)
    else:
        if not os.path.isfile(os.path.join(saved_model or "", "saved_model.pb")):
            raise ZooError(f"No SavedModel at {saved_model!r} (saved_model.pb missing).")
        loaded = tf.saved_model.load(saved_model)
    spec = loaded.serve.concrete_functions[0].structured_input_signature[0][0]
    size = int(spec.shape[1])
    image = loaded.serve(_read_image(content, size), _read_image(style, size))
    write_png(output, image[0])
    return output
