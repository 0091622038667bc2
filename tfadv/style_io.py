"""Stylising image files with an exported style SavedModel (the library side of tools/stylize.py)."""

import os

import tensorflow as tf

from tfadv import zoo
from tfadv.callbacks import write_png
from tfadv.errors import DataUnavailableError, ZooError
from tfadv.inputs import check_images


def _read_image(path: str, size: int):
    """An image file as a [1, size, size, 3] float32 batch in [0, 1].

    Antialiased resizing overshoots at sharp edges (pure white next to dark:
    up to ~1.1), so the result is clipped back into the image contract.
    """
    try:
        data = tf.io.read_file(path)
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
        raise DataUnavailableError(f"Cannot read image {path!r}: {str(e).splitlines()[0][:160]}") from None
    resized = tf.image.resize(tf.cast(image, tf.float32) / 255.0, (size, size), antialias=True)
    return tf.clip_by_value(resized, 0.0, 1.0)[None]


def _load(saved_model: str | None, zoo_name: str | None, zoo_dir: str | None):
    """(serve(content, style) with the image contract checked, the image side it takes)."""
    if zoo_name:
        kind = zoo.entry(zoo_name, zoo_dir).get("kind")
        if kind != "style":
            raise ZooError(f"Zoo entry {zoo_name!r} is a {kind} entry, not a style network.")
        served = zoo.load(zoo_name, zoo_dir)  # checksum verified; its serve checks the images
        loaded, serve = served.saved_model, served.serve
    else:
        if not os.path.isfile(os.path.join(saved_model or "", "saved_model.pb")):
            raise ZooError(f"No SavedModel at {saved_model!r} (saved_model.pb missing).")
        loaded = tf.saved_model.load(saved_model)

        def serve(content, style):
            return loaded.serve(check_images(content, name="content"), check_images(style, name="style"))

    spec = loaded.serve.concrete_functions[0].structured_input_signature[0][0]
    return serve, int(spec.shape[1]), loaded  # the caller keeps `loaded` alive while it serves


def stylize_file(content: str, style: str, output: str, saved_model: str | None = None,
                 zoo_name: str | None = None, zoo_dir: str | None = None) -> str:
    """Reads two image files, runs the style network's ``serve`` at its size, writes a PNG; returns its path."""
    serve, size, _loaded = _load(saved_model, zoo_name, zoo_dir)
    image = serve(_read_image(content, size), _read_image(style, size))
    write_png(output, image[0])
    return output
