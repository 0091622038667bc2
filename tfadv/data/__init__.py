"""Datasets as tf.data pipelines of float32 images in [0, 1] (NHWC) and int32 labels.

    ds, info = tfadv.data.load("fashion_mnist", "test", batch_size=256)
    print(info.source, info.location)   # which source served the data

Your own labelled data (an image folder, arrays, a tf.data.Dataset), split in
train / validation / test parts: :mod:`tfadv.data.own`.
"""

from tfadv.data.catalog import DATASETS, DatasetSpec, get_spec
from tfadv.data.pipeline import (SOURCES, LoadInfo, load, load_arrays, load_examples, network_available,
                                 parse_split)

__all__ = ["DATASETS", "DatasetSpec", "LoadInfo", "SOURCES", "get_spec", "load", "load_arrays", "load_examples",
           "network_available", "parse_split"]
