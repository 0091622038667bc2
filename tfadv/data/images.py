"""Image files in and out: the one place tfadv reads or writes them.

Images inside tfadv are float32 in [0, 1]. Reading: :func:`read_image` (one
file, as a batch of one), :func:`image_folder` (every image under a folder,
for style transfer), :func:`image_pairs` ((content, style) batches: any
folders of JPEG / PNG / BMP / GIF files, e.g. COCO and WikiArt; an epoch is
one pass over the content images, style images are reshuffled and cycled) and
:func:`labelled_image_folder` (one subfolder per class, for measuring an
attack on your own images). Writing: :func:`write_png`.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfadv.errors import ConfigError, DataUnavailableError

_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def _image_files(directory: str) -> list[str]:
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
        raise DataUnavailableError(f"Cannot read image {path!r}: {str(e).splitlines()[0][:160]}") from None
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
    files = _image_files(directory)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return ds.map(_decode(size), num_parallel_calls=tf.data.AUTOTUNE)


def image_pairs(content_dir: str, style_dir: str, size: int, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """Batches of (content [B, S, S, 3], style [B, S, S, 3]) in [0, 1]."""
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size must be a positive int. Received: batch_size={batch_size!r}")
    content = image_folder(content_dir, size, seed)
    style = image_folder(style_dir, size, seed + 1).repeat()
    return tf.data.Dataset.zip((content, style)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def labelled_image_folder(directory: str, image_shape, batch_size: int = 128, class_names=None):
    """A folder of labelled images (one subfolder per class, sorted names = class indices) as (images, labels).

    Images are resized to ``image_shape``'s height and width, converted to its channels and scaled to [0, 1].
    Returns (dataset, class_names).
    """
    height, width, channels = image_shape
    if channels not in (1, 3):
        raise ConfigError(f"Image folders give 1 or 3 channels; the classifier takes {channels}.")
    if not os.path.isdir(directory):
        raise ConfigError(f"Image folder {directory!r} does not exist.")
    try:
        ds = keras.utils.image_dataset_from_directory(
            directory, labels="inferred", label_mode="int", class_names=class_names,
            color_mode="grayscale" if channels == 1 else "rgb", image_size=(height, width), batch_size=batch_size,
            shuffle=False, verbose=False)
    except ValueError as e:
        raise ConfigError(f"Image folder {directory!r}: {str(e).splitlines()[0]}") from None
    names = list(ds.class_names)
    return ds.map(lambda x, y: (x / 255.0, y)), names
