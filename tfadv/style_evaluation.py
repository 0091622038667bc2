"""Judging a trained style network by what it was not trained on (the library side of tools/evaluate_style.py).

- :func:`independent_losses`: content and Gram style losses of the outputs on held-out (content, style) pairs,
  measured through a random encoder of *another seed* than any network's training loss, so a network cannot
  score well by fitting the loss network it trained against. Beside them, the same losses of two reference
  outputs: the content image unchanged (no style at all) and the style image itself (no content at all).
- :func:`images_per_second`: the network rebuilt at other sizes with its trained weights (both networks are
  fully convolutional) and timed at batch 1, image checks included.
- :func:`grid_figure`: content (rows) x style (columns) for a person to judge.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tfadv.data.images import image_files, read_image
from tfadv.figures import labelled_grid
from tfadv.models.random_encoder import RANDOM_WIDTH
from tfadv.models.style import CONTENT_LAYER, STYLE_LAYERS, style_features
from tfadv.timing import timed_calls
from tfadv.trainers.style import gram_style_loss

INDEPENDENT_ENCODER = {"seed": 1, "width": RANDOM_WIDTH}  # the zoo's style networks train against seed 0


@dataclasses.dataclass
class HeldOut:
    """Held-out images at one size: names and [N, S, S, 3] arrays in [0, 1]."""

    content_names: list
    contents: np.ndarray
    style_names: list
    styles: np.ndarray


def held_out(content_dir: str, style_dir: str, size: int) -> HeldOut:
    """Every image of two folders (e.g. ``data/photos/heldout_content`` and ``heldout_style``) at ``size``."""
    def read(folder):
        files = image_files(folder)
        names = [os.path.splitext(os.path.basename(f))[0] for f in files]
        return names, np.concatenate([read_image(f, size).numpy() for f in files])

    (content_names, contents), (style_names, styles) = read(content_dir), read(style_dir)
    return HeldOut(content_names, contents, style_names, styles)


def stylised(serve, images: HeldOut) -> np.ndarray:
    """Outputs of every (content, style) pair: [n_content, n_style, S, S, 3]."""
    return np.stack([np.asarray(serve(np.repeat(c[None], len(images.styles), 0), images.styles))
                     for c in images.contents])


def independent_losses(outputs: np.ndarray, images: HeldOut, encoder_kwargs=None) -> dict:
    """Mean content loss (``block3_conv3`` squared error to the content image) and Gram style loss (pool1..4, to
    the style image) over every pair, for the outputs and for the two reference outputs."""
    encoder_kwargs = {**INDEPENDENT_ENCODER, **(encoder_kwargs or {})}
    size = images.contents.shape[1]
    features = style_features(STYLE_LAYERS + (CONTENT_LAYER,), (size, size, 3), "random_vgg19",
                              encoder_kwargs=encoder_kwargs, name="independent_encoder")
    n_content, n_style = outputs.shape[:2]
    content = np.repeat(images.contents, n_style, 0)
    style = np.tile(images.styles, (n_content, 1, 1, 1))
    f_content, f_style = features(content), features(style)

    def losses(candidate):
        """Both losses over the whole batch of pairs: a mean over equal-sized pairs is the mean of their losses."""
        f_out = features(candidate)
        content_loss = np.mean(np.square(np.asarray(f_out[CONTENT_LAYER]) - np.asarray(f_content[CONTENT_LAYER])))
        return {"content_loss": round(float(content_loss), 4),
                "style_loss": round(float(gram_style_loss(f_out, f_style)), 4)}

    return {"output": losses(outputs.reshape(-1, *outputs.shape[2:])),
            "content_image_unchanged": losses(content), "style_image_itself": losses(style),
            "settings": {"encoder": "random_vgg19", **encoder_kwargs, "content_layer": CONTENT_LAYER,
                         "style_layers": list(STYLE_LAYERS), "pairs": int(n_content * n_style),
                         "contents": images.content_names, "styles": images.style_names}}


def images_per_second(serve_at, sizes=(256, 512), repeats: int = 3) -> dict:
    """{size: images per second} of ``serve_at(size)`` (e.g. :func:`tfadv.stylize.at_size`: the trained network
    rebuilt at that side) on batch-1 pairs, after one warm-up call."""
    found = {}
    for size in sizes:
        serve = serve_at(size)
        content = tf.random.stateless_uniform((1, size, size, 3), (size, 0))
        style = tf.random.stateless_uniform((1, size, size, 3), (size, 1))
        seconds, _ = timed_calls(lambda c, s: np.asarray(serve(c, s)), [(content, style)] * repeats)
        found[str(size)] = round(1 / seconds, 3)
    return found


def grid_figure(outputs: np.ndarray, images: HeldOut, title: str) -> np.ndarray:
    """A labelled grid: the style images across the top, the content images down the left, outputs inside."""
    size = images.contents.shape[1]
    blank = np.ones((size, size, 3), np.float32)
    tiles, captions = [blank], [["content x style"]]
    tiles += list(images.styles)
    captions += [[f"style: {n}"] for n in images.style_names]
    for i, name in enumerate(images.content_names):
        tiles.append(images.contents[i])
        captions.append([f"content: {name}"])
        tiles += list(outputs[i])
        captions += [["output"] for _ in images.style_names]
    return labelled_grid(np.stack(tiles), captions, cols=len(images.styles) + 1, factor=1, scale=1, title=title)
