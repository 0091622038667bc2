"""(content, style) image pairs from folders of image files, for style transfer.

Any folder of JPEG / PNG / BMP / GIF files works (searched recursively), e.g.
COCO images for content and WikiArt paintings for style. Images are resized to
``size`` x ``size`` and scaled to [0, 1]. An epoch is one pass over the content
images; style images are reshuffled and cycled.
"""

import os

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


def _decode(size):
    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, (size, size), antialias=True)
        return tf.clip_by_value(image, 0.0, 1.0)

    return load


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
