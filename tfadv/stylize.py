"""Stylising image files with an exported style SavedModel (the library side of tools/stylize.py; the files are
read and written by :mod:`tfadv.data.images`)."""

import os

import tensorflow as tf

from tfadv import zoo
from tfadv.data.images import read_image, write_png
from tfadv.errors import ZooError, summary
from tfadv.inputs import check_images


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
        try:
            loaded = tf.saved_model.load(saved_model)
        except Exception as e:  # noqa: BLE001 - TF raises many types for a corrupt model
            raise ZooError(f"Cannot load the SavedModel at {saved_model!r} ({summary(e, 160)}).") from None

        def serve(content, style):
            return loaded.serve(check_images(content, name="content"), check_images(style, name="style"))

    inputs = [f.structured_input_signature[0] for f in getattr(getattr(loaded, "serve", None),
                                                               "concrete_functions", [])]
    if len(inputs) != 1 or len(inputs[0]) != 2:
        raise ZooError(f"{zoo_name or saved_model!r} is not a style network: its 'serve' endpoint does not take "
                       "(content, style).")
    spec = inputs[0][0]
    return serve, int(spec.shape[1]), loaded  # the caller keeps `loaded` alive while it serves


def stylize_file(content: str, style: str, output: str, saved_model: str | None = None,
                 zoo_name: str | None = None, zoo_dir: str | None = None) -> str:
    """Reads two image files, runs the style network's ``serve`` at its size, writes a PNG; returns its path."""
    serve, size, _loaded = _load(saved_model, zoo_name, zoo_dir)
    image = serve(read_image(content, size), read_image(style, size))
    write_png(output, image[0])
    return output
