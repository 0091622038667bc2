"""One entry point for data: ``load(name, split, ...)`` -> batched ``tf.data`` pipeline.

Sources, tried in this order when ``source="auto"``:

1. ``idx_dir`` if given: a folder of MNIST-format IDX files.
2. TFDS, when a prepared copy exists in ``tfds_data_dir`` (or TFDS's default).
3. The ``keras.datasets`` cache (``~/.keras/datasets``), when its files exist.
4. Known local IDX folders (Debian's ``dataset-fashion-mnist`` package).
5. TFDS download, only when the network answers.

If none works, :class:`DataUnavailableError` says what was tried and what to
install or pass, at once: TFDS's own offline failure spends minutes retrying.
The source used is logged and returned in :class:`LoadInfo`, so no fallback is
hidden.
"""

import dataclasses
import logging
import os
import re
import socket

import numpy as np
import tensorflow as tf

from tfadv.data import idx
from tfadv.data.catalog import DatasetSpec, get_spec
from tfadv.errors import ConfigError, DataUnavailableError

log = logging.getLogger("tfadv.data")

SOURCES = ("auto", "tfds", "keras", "idx")
_SPLIT_RE = re.compile(r"^(train|test|validation)(?:\[(-?\d*%?):(-?\d*%?)\])?$")
# Where TFDS downloads MNIST-like data from; used only to tell "offline" fast.
_PROBE_HOST = ("storage.googleapis.com", 443)


@dataclasses.dataclass(frozen=True)
class LoadInfo:
    """Where the data came from.

    Attributes:
        source: "tfds", "tfds-download", "keras" or "idx".
        location: folder or description of the files read.
        num_examples: examples in the split (None when TFDS does not say).
        spec: the dataset's static facts.
    """

    source: str
    location: str
    num_examples: int | None
    spec: DatasetSpec


def network_available(timeout: float = 2.0) -> bool:
    """True if the TFDS download host answers within ``timeout`` seconds.

    ``TFADV_OFFLINE=1`` forces False (no probe at all).
    """
    if os.environ.get("TFADV_OFFLINE", "") not in ("", "0"):
        return False
    try:
        with socket.create_connection(_PROBE_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def parse_split(split: str) -> tuple[str, slice]:
    """Parses "train", "test" or a TFDS-style slice such as "train[:1000]" / "test[50%:]"."""
    m = _SPLIT_RE.match(split) if isinstance(split, str) else None
    if not m:
        raise ConfigError(
            f"Unknown split {split!r}: use 'train', 'test' or 'validation' (imagenet2012), optionally sliced "
            "like 'train[:1000]' or 'train[90%:]'."
        )
    return m.group(1), slice(m.group(2) or None, m.group(3) or None)


def slice_arrays(images, labels, sl: slice):
    """``images[sl], labels[sl]`` for a slice of :func:`parse_split` (bounds as counts or percentages)."""
    def bound(b):
        if b is None:
            return None
        if b.endswith("%"):
            return int(round(len(images) * int(b[:-1]) / 100))
        return int(b)

    s = slice(bound(sl.start), bound(sl.stop))
    return images[s], labels[s]


def _from_idx(spec, directory, split):
    base, sl = parse_split(split)
    images, labels = idx.load_idx_split(directory, base)
    if images.shape[1:] != spec.image_shape:
        raise DataUnavailableError(
            f"IDX images in {directory!r} have shape {images.shape[1:]}, but {spec.name} needs {spec.image_shape}."
        )
    return slice_arrays(images, labels, sl)


def _from_keras_cache(spec, split):
    import keras

    base, sl = parse_split(split)
    if base not in ("train", "test"):
        raise DataUnavailableError(f"keras.datasets.{spec.keras_loader} has no {base!r} split (only train, test).")
    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, spec.keras_loader).load_data()
    images, labels = (x_train, y_train) if base == "train" else (x_test, y_test)
    images = images.reshape((-1,) + spec.image_shape)
    return slice_arrays(images, labels.reshape(-1).astype(np.int64), sl)


class _NotInTFDS(Exception):
    """TFDS knows no dataset of this name: no builder, and no prepared copy in the data_dir."""


def _tfds_dataset(spec, split, data_dir, download):
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.registered import DatasetNotFoundError

    try:
        return tfds.load(spec.name, split=split, data_dir=data_dir, as_supervised=True, download=download,
                         shuffle_files=False)
    except DatasetNotFoundError:  # its message lists every TFDS dataset: a screenful
        raise _NotInTFDS(spec.name) from None


def load_examples(name: str, split: str = "train", *, source: str = "auto", idx_dir: str | None = None,
                  tfds_data_dir: str | None = None) -> tuple[tf.data.Dataset, LoadInfo]:
    """Returns an unbatched dataset of (image uint8 [H, W, C] or float, label) and where it came from.

    Most callers want :func:`load`, which adds conversion to [0, 1], shuffling,
    augmentation and batching.
    """
    spec = get_spec(name)
    if source not in SOURCES:
        raise ConfigError(f"Unknown data source {source!r}. Known sources: {', '.join(SOURCES)}.")
    parse_split(split)  # validate early, whatever the source
    tried = []

    def arrays(images, labels, src, where):
        ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
        return ds, LoadInfo(src, where, len(labels), spec)

    if source == "idx" or (source == "auto" and idx_dir):
        dirs = [idx_dir] if idx_dir else list(spec.local_idx_dirs)
        for d in dirs:
            if idx.find_idx_files(d, parse_split(split)[0]):
                return arrays(*_from_idx(spec, d, split), "idx", d)
            tried.append(f"IDX files in {d} (not found)")
        if source == "idx" or idx_dir:
            raise DataUnavailableError(f"Cannot load {name!r} from IDX files: tried {'; '.join(tried) or 'no folder'}.")

    in_tfds = True  # TFDS has a builder (or a prepared copy) of this name
    if source in ("auto", "tfds"):
        try:
            ds = _tfds_dataset(spec, split, tfds_data_dir, download=False)
            return ds, LoadInfo("tfds", tfds_data_dir or "TFDS default data_dir", None, spec)
        except _NotInTFDS:
            in_tfds = False
            tried.append(f"TFDS has no dataset named {spec.name!r} (no builder, no prepared copy in "
                         f"{tfds_data_dir or 'the default data_dir'})")
        except (AssertionError, FileNotFoundError) as e:
            first_line = (str(e).splitlines() or [""])[0][:120]
            tried.append(f"TFDS prepared copy in {tfds_data_dir or 'the default data_dir'} ({first_line})")

    if source in ("auto", "keras") and spec.keras_loader:
        if os.path.exists(spec.keras_cache_path):
            return arrays(*_from_keras_cache(spec, split), "keras", spec.keras_cache_path)
        tried.append(f"keras.datasets cache {spec.keras_cache_path} (not found)")
    elif source == "keras":
        tried.append(f"keras.datasets (no loader of {name!r})")

    if source == "auto":
        for d in spec.local_idx_dirs:
            if idx.find_idx_files(d, parse_split(split)[0]):
                return arrays(*_from_idx(spec, d, split), "idx", d)
            tried.append(f"IDX files in {d} (not found)")

    if source in ("auto", "tfds") and in_tfds:
        if network_available():
            log.info("Downloading %s with TFDS.", name)
            ds = _tfds_dataset(spec, split, tfds_data_dir, download=True)
            return ds, LoadInfo("tfds-download", tfds_data_dir or "TFDS default data_dir", None, spec)
        tried.append("TFDS download (network unreachable)")

    raise DataUnavailableError(f"Cannot load dataset {name!r} (split {split!r}). Tried: {'; '.join(tried)}. "
                               f"To fix: {spec.hint}.")


def _to_unit_float(spec: DatasetSpec):
    """Returns a map fn: (image, label) -> (float32 image in [0, 1] of spec.image_shape, int32 label)."""
    h, w, c = spec.image_shape

    def convert(image, label):
        image = tf.convert_to_tensor(image)
        if image.shape.rank == 2:
            image = image[..., None]
        if spec.name == "imagenet2012":
            # Resize the short side to 256/224 of the target, then centre-crop: the usual eval transform.
            shape = tf.cast(tf.shape(image)[:2], tf.float32)
            scale = (h * 256.0 / 224.0) / tf.reduce_min(shape)
            image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32), antialias=True)
            image = tf.image.resize_with_crop_or_pad(image, h, w) / 255.0
        else:
            image = tf.cast(image, tf.float32) / 255.0
        image = tf.ensure_shape(image, (h, w, c))
        return tf.clip_by_value(image, 0.0, 1.0), tf.cast(label, tf.int32)

    return convert


def _augment(spec: DatasetSpec):
    """Returns a map fn applying label-preserving augmentation (flip if allowed, pad + random crop)."""
    h, w, c = spec.image_shape

    def augment(image, label):
        if spec.flip_augment:
            image = tf.image.random_flip_left_right(image)
        if spec.pad_crop:
            p = spec.pad_crop
            image = tf.pad(image, [[p, p], [p, p], [0, 0]])
            image = tf.image.random_crop(image, (h, w, c))
        return image, label

    return augment


def load(name: str, split: str = "train", *, batch_size: int = 128, shuffle: bool = False,
         augment: bool = False, source: str = "auto", idx_dir: str | None = None,
         tfds_data_dir: str | None = None, seed: int = 0, drop_remainder: bool = False,
         cache: bool | None = None) -> tuple[tf.data.Dataset, LoadInfo]:
    """Loads a dataset split as a batched pipeline of (images, labels).

    Args:
        name: TFDS name: mnist, fashion_mnist, cifar10 or imagenet2012.
        split: "train" or "test", optionally sliced ("train[:1000]", "train[90%:]").
        batch_size: examples per batch (> 0).
        shuffle: reshuffle every epoch (training).
        augment: label-preserving random flips/translations (training).
        source: "auto" (see module doc), "tfds", "keras" or "idx".
        idx_dir: folder of MNIST-format IDX files to read instead of TFDS.
        tfds_data_dir: TFDS data_dir holding prepared datasets.
        seed: shuffle seed.
        drop_remainder: drop the last partial batch (static batch shape).
        cache: cache decoded examples in memory; default on for shuffled splits of images up to 32x32.

    Returns:
        (dataset, info): dataset yields float32 images [B, H, W, C] in [0, 1] and
        int32 labels [B]; info says which source was used.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
    ds, info = load_examples(name, split, source=source, idx_dir=idx_dir, tfds_data_dir=tfds_data_dir)
    log.info("Loaded %s[%s] from %s (%s), %s examples.", name, split, info.source, info.location,
             info.num_examples if info.num_examples is not None else "unknown number of")
    spec = info.spec
    ds = ds.map(_to_unit_float(spec), num_parallel_calls=tf.data.AUTOTUNE)
    # Cache only what a full-split shuffle follows by default: its buffer reads the whole split, so the cache
    # completes even when a caller takes a few batches. An unshuffled pipeline read in part (an image grid's
    # first batch, ``take``) leaves the cache incomplete: TF discards it and warns "did not fully read".
    if cache if cache is not None else (shuffle and spec.image_shape[0] <= 32):
        ds = ds.cache()
    if shuffle:
        known = info.num_examples or max(int(ds.cardinality()), 0)  # TFDS does not say; its dataset often does
        ds = ds.shuffle(min(known or 10_000, 60_000), seed=seed, reshuffle_each_iteration=True)
    if augment:
        ds = ds.map(_augment(spec), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE), info


def load_arrays(name: str, split: str = "test", **load_kwargs) -> tuple[np.ndarray, np.ndarray, LoadInfo]:
    """(images, labels, info): a split read whole, in order, as numpy arrays (float32 [N, H, W, C] in [0, 1],
    int32 [N]): the images an evaluation attacks. ``load_kwargs``: :func:`load`'s source settings."""
    ds, info = load(name, split, batch_size=1000, **load_kwargs)
    batches = [(images.numpy(), labels.numpy()) for images, labels in ds]
    if not batches:
        raise ConfigError(f"{name}[{split}] ({info.source}: {info.location}) holds no examples.")
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]), info
