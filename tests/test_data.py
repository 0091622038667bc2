import gzip
import os
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import tfadv.data as data_lib
from tfadv.data import idx
from tfadv.errors import ConfigError, DataUnavailableError


def test_idx_round_trip_plain_and_gzipped(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        idx.write_idx(str(tmp_path / name), array)
        np.testing.assert_array_equal(idx.read_idx(str(tmp_path / name)), array)


def test_idx_reader_rejects_truncated_and_foreign_files(tmp_path):
    path = str(tmp_path / "x-idx3-ubyte.gz")
    idx.write_idx(path, np.zeros((4, 28, 28), np.uint8))
    raw = gzip.open(path).read()
    with gzip.open(path, "wb") as f:
        f.write(raw[:-10])
    with pytest.raises(DataUnavailableError, match="truncated or corrupt"):
        idx.read_idx(path)
    junk = tmp_path / "junk-idx3-ubyte"
    junk.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DataUnavailableError, match="bad magic"):
        idx.read_idx(str(junk))
    with pytest.raises(DataUnavailableError, match="Cannot read"):
        idx.read_idx(str(tmp_path / "missing.gz"))


def test_load_from_idx_dir_gives_unit_float_nhwc_batches(idx_dir):
    ds, info = data_lib.load("fashion_mnist", "train", batch_size=32, idx_dir=idx_dir)
    assert (info.source, info.location, info.num_examples) == ("idx", idx_dir, 96)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [32, 32, 32]
    images, labels = batches[0]
    assert images.dtype == tf.float32 and images.shape[1:] == (28, 28, 1)
    assert labels.dtype == tf.int32
    values = np.concatenate([b[0].numpy().ravel() for b in batches])
    assert values.min() >= 0.0 and values.max() <= 1.0 and values.max() > 0.9
    raw, _ = idx.load_idx_split(idx_dir, "train")
    np.testing.assert_allclose(images.numpy(), raw[:32] / 255.0, atol=1e-6)


def test_split_slicing_and_augmentation_keep_shape_and_range(idx_dir):
    ds, info = data_lib.load("fashion_mnist", "train[:50%]", batch_size=16, idx_dir=idx_dir, shuffle=True,
                             augment=True)
    assert info.num_examples == 48
    images = np.concatenate([b[0].numpy() for b in ds])
    assert images.shape == (48, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    ds, info = data_lib.load("mnist", "test[10:20]", batch_size=4, idx_dir=idx_dir)
    assert info.num_examples == 10


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)),
                                        ("cifar10", (32, 32, 3))])
def test_tfds_path_under_mock_data(name, shape):
    with tfds.testing.mock_data(num_examples=20):
        ds, info = data_lib.load(name, "train", batch_size=8, source="tfds", shuffle=True, augment=True)
        images, labels = next(iter(ds))
    assert info.source == "tfds"
    assert images.shape == (8,) + shape and images.dtype == tf.float32
    assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 1.0
    assert labels.dtype == tf.int32 and int(tf.reduce_max(labels)) < 10


def test_imagenet_under_mock_data_is_resized_and_cropped():
    with tfds.testing.mock_data(num_examples=4):
        ds, _ = data_lib.load("imagenet2012", "validation", batch_size=2, source="tfds")
        images, _ = next(iter(ds))
    assert images.shape == (2, 224, 224, 3)
    assert float(tf.reduce_max(images)) <= 1.0


def test_unknown_dataset_split_source_and_batch_size_are_named(idx_dir):
    with pytest.raises(ConfigError, match="Unknown dataset 'svhn'.*fashion_mnist"):
        data_lib.load("svhn")
    with pytest.raises(ConfigError, match="Unknown split 'valid'"):
        data_lib.load("mnist", "valid", idx_dir=idx_dir)
    with pytest.raises(ConfigError, match="Unknown data source 'web'"):
        data_lib.load("mnist", source="web")
    with pytest.raises(ConfigError, match="batch_size must be a positive integer, got 0"):
        data_lib.load("mnist", batch_size=0, idx_dir=idx_dir)


def test_offline_without_local_data_fails_fast_with_a_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no keras.datasets cache
    start = time.time()
    with pytest.raises(DataUnavailableError) as err:
        data_lib.load("mnist", "test", tfds_data_dir=str(tmp_path / "tfds"))
    assert time.time() - start < 10, "must not sit through TFDS's download retries"
    message = str(err.value)
    assert "network unreachable" in message and "--idx_dir" in message


def test_explicit_idx_dir_without_files_is_reported(tmp_path):
    with pytest.raises(DataUnavailableError, match="No IDX files|not found"):
        data_lib.load("mnist", "test", idx_dir=str(tmp_path))


def test_idx_images_of_the_wrong_size_are_refused(tmp_path):
    for prefix in ("train", "t10k"):
        idx.write_idx(os.path.join(tmp_path, f"{prefix}-images-idx3-ubyte"), np.zeros((3, 8, 8), np.uint8))
        idx.write_idx(os.path.join(tmp_path, f"{prefix}-labels-idx1-ubyte"), np.zeros((3,), np.uint8))
    with pytest.raises(DataUnavailableError, match=r"shape \(8, 8, 1\).*needs \(28, 28, 1\)"):
        data_lib.load("mnist", "train", idx_dir=str(tmp_path))
