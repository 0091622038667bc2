"""What tfadv knows about each dataset: shape, classes, where local copies live.

Names are TFDS names. An unknown name fails with the list of known ones.
Adding a dataset: a ``DatasetSpec`` passed to :func:`register_dataset` here,
and its test (the loaders in ``pipeline.py`` need nothing more for a TFDS
image-classification dataset or MNIST-format IDX files).
"""

import dataclasses
import os

from tfadv.errors import ConfigError
from tfadv.registry import Registry


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Static facts about one dataset.

    Attributes:
        name: TFDS name (``tfds.load(name)``).
        image_shape: (H, W, C) of the images tfadv yields.
        num_classes: number of labels.
        flip_augment: whether a horizontal flip keeps the label (not for digits).
        pad_crop: pixels of padding for random-translation augmentation.
        local_idx_dirs: folders searched for MNIST-format IDX files when TFDS
            has no prepared copy (e.g. Debian's ``dataset-fashion-mnist``).
        keras_loader: name of the ``keras.datasets`` module whose local cache
            (``~/.keras/datasets``) can serve this dataset offline, if any.
        keras_cache: file or folder under ``~/.keras/datasets`` that proves the
            Keras cache is present.
        class_names: label k's name (figures and reports), when known.
        offline_hint: what to install or pass when no source has the data (the end of the one-line
            ``DataUnavailableError``); empty: :attr:`hint`'s generic advice.
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    flip_augment: bool = False
    pad_crop: int = 0
    local_idx_dirs: tuple[str, ...] = ()
    keras_loader: str | None = None
    keras_cache: str | None = None
    class_names: tuple[str, ...] = ()
    offline_hint: str = ""

    @property
    def hint(self) -> str:
        """What to do when no source has the data: ``offline_hint``, or where tfadv looks for any dataset."""
        if self.offline_hint:
            return self.offline_hint
        return (f"pass --idx_dir=DIR holding its MNIST-format IDX files (or list such folders in its DatasetSpec's "
                f"local_idx_dirs), or prepare {self.name} with TFDS and pass --tfds_data_dir=DIR")

    @property
    def keras_cache_path(self) -> str | None:
        if self.keras_cache is None:
            return None
        return os.path.join(os.path.expanduser("~"), ".keras", "datasets", self.keras_cache)


DATASETS = Registry("dataset")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Registers a dataset (the one registration point): TFDS loads it by ``spec.name``; local IDX files, the
    Keras cache and the figures use the rest of the spec."""
    return DATASETS.register(spec.name, spec)


for _spec in (
    DatasetSpec(
        "mnist", (28, 28, 1), 10, flip_augment=False, pad_crop=2,
        local_idx_dirs=("/usr/share/datasets/mnist",),
        keras_loader="mnist", keras_cache="mnist.npz", class_names=tuple("0123456789"),
        offline_hint="pass --idx_dir=DIR holding the four MNIST IDX files, or place mnist.npz in ~/.keras/datasets",
    ),
    DatasetSpec(
        "fashion_mnist", (28, 28, 1), 10, flip_augment=True, pad_crop=2,
        local_idx_dirs=("/usr/share/datasets/fashion-mnist",),
        keras_loader="fashion_mnist", keras_cache="fashion-mnist",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                     "Bag", "Ankle boot"),
        offline_hint="run `apt-get install dataset-fashion-mnist` (real Fashion-MNIST, offline), or pass --idx_dir",
    ),
    DatasetSpec(
        "cifar10", (32, 32, 3), 10, flip_augment=True, pad_crop=4,
        keras_loader="cifar10", keras_cache="cifar-10-batches-py",
        class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        offline_hint="place cifar-10-batches-py in ~/.keras/datasets, or prepare it with `tfds build cifar10` "
                     "online and pass --tfds_data_dir",
    ),
    DatasetSpec("imagenet2012", (224, 224, 3), 1000, flip_augment=True,
                offline_hint="prepare it with TFDS (manual download of the ILSVRC2012 tars) and pass "
                             "--tfds_data_dir"),
):
    register_dataset(_spec)
del _spec


def get_spec(name: str) -> DatasetSpec:
    """Returns the spec of dataset ``name`` or raises ConfigError listing the known names."""
    if not isinstance(name, str):
        raise ConfigError(f"A dataset name is a string. Received: {name!r}")
    return DATASETS.lookup(name)
