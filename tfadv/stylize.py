"""Stylising image files with an exported style SavedModel (the library side of tools/stylize.py; the files are
read and written by :mod:`tfadv.data.images`)."""

import os

import tensorflow as tf

from tfadv import zoo
from tfadv.data.images import read_image, write_png
from tfadv.errors import ZooError, summary
from tfadv.inputs import check_images


def load_style(saved_model: str | None = None, zoo_name: str | None = None, zoo_dir: str | None = None):
    """(serve(content, style) with the image contract checked, the image side it takes, the loaded SavedModel:
    keep it alive while serving) of a style SavedModel folder or zoo entry (checksum verified)."""
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


def at_size(zoo_name: str, size: int, zoo_dir: str | None = None):
    """serve(content, style) of zoo entry ``zoo_name`` at another image side: its trained weights (checksum
    verified, through :func:`tfadv.presets.load_keras`) in the same network rebuilt at ``size`` (both style networks
    are fully convolutional; the Gram-stack network's Gram maps are resized to the new side)."""
    import dataclasses

    from tfadv import experiments, presets
    from tfadv.tasks.style import build_style_network

    cfg = experiments.from_dict(zoo.entry(zoo_name, zoo_dir)["config"])
    if cfg.encoder == "vgg16" and cfg.vgg_weights not in (None, "imagenet"):
        raise ZooError(f"{zoo_name!r} was trained with VGG16 weights from a file; run it at its own size.")
    network = build_style_network(dataclasses.replace(cfg, size=size))
    network.set_weights(presets.load_keras(zoo_name, zoo_dir).get_weights())

    run = tf.function(lambda content, style: network({"content": content, "style": style}, training=False))

    def serve(content, style):
        return run(check_images(content, name="content"), check_images(style, name="style"))

    return serve


def stylize_file(content: str, style: str, output: str, saved_model: str | None = None,
                 zoo_name: str | None = None, zoo_dir: str | None = None, size: int | None = None) -> str:
    """Reads two image files, stylises them (at the network's own size, or at ``size`` for a zoo entry) and writes a
    PNG; returns its path."""
    serve, own_size, _loaded = load_style(saved_model, zoo_name, zoo_dir)
    if size and size != own_size:
        if not zoo_name:
            raise ZooError("--size needs --zoo_name: a SavedModel folder runs at the size it was exported at.")
        serve = at_size(zoo_name, size, zoo_dir)
    size = size or own_size
    image = serve(read_image(content, size), read_image(style, size))
    write_png(output, image[0])
    return output
