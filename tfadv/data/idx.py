"""Reading MNIST-format IDX files (plain or gzipped) with numpy.

This is the offline path for MNIST-like datasets: Debian's
``dataset-fashion-mnist`` package, or any folder holding the four files
``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.
"""

import gzip
import os

import numpy as np

from tfadv.errors import DataUnavailableError

_IDX_DTYPES = {0x08: np.uint8}
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: str) -> np.ndarray:
    """Returns the array stored in one IDX file (uint8 only, as MNIST uses).

    Raises:
        DataUnavailableError: the file is unreadable, truncated, or not IDX.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataUnavailableError(f"Cannot read IDX file {path!r}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataUnavailableError(f"{path!r} is not an IDX file (bad magic number).")
    dtype = _IDX_DTYPES.get(raw[2])
    if dtype is None:
        raise DataUnavailableError(f"{path!r}: unsupported IDX element type 0x{raw[2]:02x} (only uint8).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataUnavailableError(f"{path!r} is truncated (header).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(raw) - header != expected:
        raise DataUnavailableError(
            f"{path!r} is truncated or corrupt: header says shape {shape} "
            f"({expected} bytes) but {len(raw) - header} bytes follow."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def find_idx_files(directory: str, split: str) -> tuple[str, str] | None:
    """Returns (images_path, labels_path) for ``split`` in ``directory``, or None if absent."""
    prefix = _SPLIT_PREFIX.get(split)
    if prefix is None:
        return None  # IDX datasets have only train and test
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        for suffix in (".gz", ""):
            candidate = os.path.join(directory, f"{prefix}-{kind}{suffix}")
            if os.path.isfile(candidate):
                found.append(candidate)
                break
        else:
            return None
    return found[0], found[1]


def load_idx_split(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Loads one split ("train" or "test") as (images uint8 [N, H, W, 1], labels int64 [N]).

    Raises:
        DataUnavailableError: files missing, corrupt, or images and labels disagree.
    """
    paths = find_idx_files(directory, split)
    if paths is None:
        prefix = _SPLIT_PREFIX.get(split, split)
        raise DataUnavailableError(
            f"No IDX files for split {split!r} in {directory!r}: expected "
            f"{prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz]."
        )
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1:
        raise DataUnavailableError(
            f"IDX files in {directory!r} have shapes {images.shape} and {labels.shape}; "
            "expected images [N, H, W] and labels [N]."
        )
    if len(images) != len(labels):
        raise DataUnavailableError(
            f"IDX files in {directory!r} disagree: {len(images)} images but {len(labels)} labels."
        )
    return images[..., None], labels.astype(np.int64)


def write_idx(path: str, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file (gzipped if ``path`` ends in .gz); used by tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
