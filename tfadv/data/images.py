"""Image files in and out: the one place tfadv reads or writes them.

Images inside tfadv are float32 in [0, 1]. Reading: :func:`read_image` (one
file, as a batch of one), :func:`image_folder` (every image under a folder,
for style transfer), :func:`image_pairs` ((content, style) batches: any
folders of JPEG / PNG / BMP / GIF files, e.g. COCO and WikiArt; an epoch is
one pass over the content images, style images are reshuffled and cycled) and
:func:`labelled_images` / :func:`labelled_image_folder` (one subfolder per
class: your own labelled images, to train or measure an attack on).
Writing: :func:`write_png`.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from tfadv.errors import ConfigError, DataUnavailableError, InputError, summary

log = logging.getLogger("tfadv.data")

_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def image_files(directory: str) -> list[str]:
    """Every image file under ``directory`` (sorted paths); a one-line error if there is none."""
    if not directory or not os.path.isdir(directory):
        raise DataUnavailableError(f"Image folder {directory!r} does not exist.")
    files = sorted(os.path.join(root, n) for root, _, names in os.walk(directory) for n in names
                   if n.lower().endswith(_EXTENSIONS))
    if not files:
        raise DataUnavailableError(f"Image folder {directory!r} holds no {'/'.join(_EXTENSIONS)} files.")
    return files


def _resized(image, size: int):
    """uint8 [H, W, 3] -> float32 [size, size, 3] in [0, 1]. Antialiased resizing overshoots at sharp edges
    (pure white next to dark: up to ~1.1), so the result is clipped back into the image contract."""
    image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, (size, size), antialias=True)
    return tf.clip_by_value(image, 0.0, 1.0)


def _decode(size):
    def load(path):
        return _resized(tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False), size)

    return load


def read_image(path: str, size: int):
    """An image file as a [1, size, size, 3] float32 batch in [0, 1]; a one-line error if it cannot be read."""
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
        raise DataUnavailableError(f"Cannot read image {path!r}: {summary(e, 160)}") from None
    return _resized(image, size)[None]


def write_png(path: str, image) -> str:
    """Writes an [H, W, 3] (or [H, W, 1]) image in [0, 1] (array or tensor) as PNG; returns ``path``."""
    pixels = np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(pixels))
    return path


def image_folder(directory: str, size: int, seed: int = 0, shuffle: bool = True) -> tf.data.Dataset:
    """Unbatched [size, size, 3] float32 images in [0, 1] from every image file under ``directory``."""
    if not isinstance(size, int) or size <= 0:
        raise ConfigError(f"size must be a positive int. Received: size={size!r}")
    files = image_files(directory)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return ds.map(_decode(size), num_parallel_calls=tf.data.AUTOTUNE)


def image_pairs(content_dir: str, style_dir: str, size: int, batch_size: int, seed: int = 0,
                cycle: bool = False) -> tf.data.Dataset:
    """Batches of (content [B, S, S, 3], style [B, S, S, 3]) in [0, 1]: one pass over the content images, or
    endless reshuffled passes with ``cycle``."""
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size must be a positive int. Received: batch_size={batch_size!r}")
    content = image_folder(content_dir, size, seed)
    content = content.repeat() if cycle else content
    style = image_folder(style_dir, size, seed + 1).repeat()
    return tf.data.Dataset.zip((content, style)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def class_folders(directory: str) -> list:
    """The sorted names of ``directory``'s subfolders: the classes of a labelled image folder, in label order."""
    return sorted(n for n in os.listdir(directory) if os.path.isdir(os.path.join(directory, n)))


def labelled_images(directory: str, image_shape, class_names=None):
    """A folder of labelled images (one subfolder per class, sorted names = class indices) as arrays.

    Images are resized (bilinear) to ``image_shape``'s height and width, converted to its channels and scaled
    to [0, 1]. Every file is decoded up front, so a file that cannot be decoded stops the run with a one-line
    InputError naming it rather than a TensorFlow traceback mid-attack. Files that are not images are skipped
    and images of other channels converted (RGB to grayscale, alpha dropped), each with a warning that counts
    them and names the first; images of any other size (mixed sizes included) are resized with a warning that
    lists the sizes found. Returns (images float32 [N, H, W, C], labels int32 [N], class_names, files): the
    files in the order of the images, for a caller that records which file went where.
    """
    height, width, channels = image_shape
    if channels not in (1, 3):
        raise ConfigError(f"Image folders give 1 or 3 channels; the classifier takes {channels}.")
    if not os.path.isdir(directory):
        raise ConfigError(f"Image folder {directory!r} does not exist.")
    names = list(class_names or class_folders(directory))
    if not names:
        raise ConfigError(f"Image folder {directory!r} has no class subfolders (one per class, e.g. {directory}/0/).")
    images, labels, files, skipped, converted, resized = [], [], [], [], [], {}
    for label, name in enumerate(names):
        folder = os.path.join(directory, name)
        if not os.path.isdir(folder):
            raise ConfigError(f"Image folder {directory!r} has no subfolder {name!r} for class {label}.")
        for path in sorted(os.path.join(root, n) for root, _, found in os.walk(folder) for n in found):
            if not path.lower().endswith(_EXTENSIONS):
                skipped.append(path)
                continue
            image, was = _decoded(path, channels)
            if was != channels:
                converted.append(path)
            if tuple(image.shape[:2]) != (height, width):
                resized.setdefault(tuple(image.shape[:2]), path)
            images.append(tf.image.resize(image, (height, width)) / 255.0)
            labels.append(label)
            files.append(path)
    if not images:
        raise ConfigError(f"Image folder {directory!r} holds no {'/'.join(_EXTENSIONS)} files in its class "
                          "subfolders.")
    if skipped:
        log.warning("Skipped %d file(s) in %s that are not %s images, e.g. %s.", len(skipped), directory,
                    "/".join(_EXTENSIONS), skipped[0])
    if converted:
        log.warning("Converted %d image(s) in %s to %d channel(s) for the classifier, e.g. %s.", len(converted),
                    directory, channels, converted[0])
    if resized:
        sizes = ", ".join(f"{h}x{w}" for h, w in sorted(resized)[:5]) + (", ..." if len(resized) > 5 else "")
        log.warning("Resized the images of %s from %s (height x width) to the classifier's %dx%d, e.g. %s.",
                    directory, sizes, height, width, next(iter(resized.values())))
    return tf.stack(images).numpy(), np.asarray(labels, np.int32), names, files


def labelled_image_folder(directory: str, image_shape, batch_size: int = 128, class_names=None):
    """A folder of labelled images (see :func:`labelled_images`) as a batched dataset of (images, labels), for
    measuring an attack on your own images. Returns (dataset, class_names)."""
    images, labels, names, _ = labelled_images(directory, image_shape, class_names)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size), names


def _decoded(path: str, channels: int):
    """(float32 [H, W, channels] in 0-255, the file's own colour channel count); InputError naming the file."""
    try:
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        raise InputError(f"Cannot decode image {path!r}: {str(e).splitlines()[0][:160]}") from None
    colour = 1 if image.shape[-1] in (1, 2) else 3  # 2: grayscale + alpha, 4: RGBA
    image = tf.cast(image[..., :colour], tf.float32)
    if colour != channels:
        image = tf.image.rgb_to_grayscale(image) if channels == 1 else tf.image.grayscale_to_rgb(image)
    return image, colour
