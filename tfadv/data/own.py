"""Your own labelled data, split in three parts: train (trained on), validation (chosen by), test (measured once).

A run on your own data has ``data.dataset = "own"`` (:data:`OWN`); its
:class:`OwnData` comes from

* an image folder (:func:`read_folder`): one subfolder per class (sorted names
  = class indices), from which a seeded, stratified share of every class is
  held out for validation and another for test; or ``train/``, ``val/``
  (or ``validation/``) and ``test/`` subfolders, each of that form, used as
  given. Images are decoded by :func:`tfadv.data.images.labelled_images`
  (resized to the classifier's input, channels converted with a warning);
* numpy arrays ``(x, y)``, a ``tf.data.Dataset`` of (images, labels), batched
  or not, or a dict of the three parts of either (:func:`from_arrays`).

Everything is read into memory once (a folder read again in the same process
comes from a cache keyed by its files' sizes and times). Each part is in a
seeded random order, so a report's "first N images" mix the classes.
:func:`load` turns a part into the batched pipeline ``tfadv.data.load`` gives
for a registered dataset.

    own = read_folder("my_images", (64, 64, 3))
    own.counts()                  # {"train": 80, "validation": 10, "test": 10}
    ds, info = load(own, "test", batch_size=128)
"""

import dataclasses
import functools
import json
import os

import numpy as np
import tensorflow as tf

from tfadv.data.catalog import DatasetSpec
from tfadv.data.images import class_folders, labelled_images
from tfadv.data.pipeline import LoadInfo, parse_split, slice_arrays
from tfadv.errors import ConfigError
from tfadv.inputs import check_images

OWN = "own"  # data.dataset of a run on your own data
PARTS = ("train", "validation", "test")  # what data.train_split / validation_split / eval_split name
FOLDER_PARTS = {"train": ("train",), "validation": ("val", "validation"), "test": ("test",)}  # subfolder names
HOLDOUT = 0.1  # default share of each class held out for validation, and the same again for test
SPLIT_SEED = 0  # the held-out images and every part's order are drawn with this seed: the same on every read
MIN_PER_CLASS = 3  # one image each for train, validation and test


@dataclasses.dataclass(frozen=True)
class OwnData:
    """The three parts of your own labelled data, in memory.

    Attributes:
        parts: part name (:data:`PARTS`) -> (images float32 [N, H, W, C] in [0, 1], labels int32 [N]).
        class_names: label k's name.
        source, location: where it came from, as :class:`tfadv.data.LoadInfo` says it ("image_folder" and the
            folder, or "arrays" / "tf.data" and a description).
        directory: the image folder (None for data given in Python): what a config records to read it again.
        holdout: share of each class held out per part; None when the parts were given.
        members: part -> the folder's files (relative paths) or the indices into the arrays given, in the order
            of the part's images: which example went where.
    """

    parts: dict
    class_names: tuple
    source: str
    location: str
    directory: str | None = None
    holdout: float | None = None
    members: dict | None = None

    @property
    def image_shape(self) -> tuple:
        return tuple(int(d) for d in self.parts["train"][0].shape[1:])

    @property
    def spec(self) -> DatasetSpec:
        """The dataset's facts, as the catalog gives them for a registered dataset."""
        return DatasetSpec(OWN, self.image_shape, len(self.class_names), class_names=tuple(self.class_names))

    def counts(self) -> dict:
        """Examples per part."""
        return {part: len(self.parts[part][1]) for part in PARTS}

    def describe(self) -> str:
        """One line for reports: where the data came from and how it was split."""
        counts = ", ".join(f"{part} {n}" for part, n in self.counts().items())
        how = (f"{self.holdout:.0%} of each class held out for validation and {self.holdout:.0%} for test, seed "
               f"{SPLIT_SEED}" if self.holdout is not None else "parts as given")
        return f"{self.location}: {len(self.class_names)} classes; {counts} images ({how})"

    def split_record(self) -> dict:
        """What went where, as JSON: the source, the classes, the counts and each part's members."""
        return {"source": self.source, "location": self.location, "class_names": list(self.class_names),
                "holdout": self.holdout, "seed": SPLIT_SEED if self.holdout is not None else None,
                "counts": self.counts(), "members": self.members}

    def write_split(self, path: str) -> str:
        """Writes :meth:`split_record` to ``path`` (a run folder's data_split.json); returns ``path``."""
        with open(path, "w") as f:
            json.dump(self.split_record(), f, indent=1)
        return path

    def part(self, split: str):
        """(images, labels) of ``split``: a part name, optionally sliced like ``"test[:100]"``."""
        base, sl = parse_split(split)
        if base not in self.parts:
            raise ConfigError(f"Split {split!r}: your own data has the parts {', '.join(PARTS)}.")
        return slice_arrays(*self.parts[base], sl)


def load(own: OwnData, split: str, *, batch_size: int = 128, shuffle: bool = False,
         seed: int = 0) -> tuple[tf.data.Dataset, LoadInfo]:
    """``split`` of your own data as a batched pipeline of (images, labels), reshuffled every epoch with
    ``shuffle``, and where it came from: what :func:`tfadv.data.load` gives for a registered dataset."""
    images, labels = own.part(split)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(max(len(labels), 1), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE), LoadInfo(own.source, own.location, len(labels), own.spec)


def read_folder(directory: str, image_shape, *, holdout: float = HOLDOUT, class_names=None) -> OwnData:
    """Your labelled image folder (see the module doc), resized to ``image_shape`` (H, W, C; C 1 or 3).

    ``class_names``: the classes expected (a run's config reading its folder again); a folder whose classes
    differ is refused. Every problem is a one-line ConfigError naming the folder: missing or empty, a class
    too small to split, a train/val/test layout missing a part or with other classes in a part.
    """
    if not directory or not os.path.isdir(directory):
        raise ConfigError(f"Image folder {directory!r} does not exist: give a folder with one subfolder of images "
                          "per class, or train/, val/ and test/ subfolders of that form.")
    directory = os.path.abspath(directory)
    shape = tuple(int(d) for d in image_shape)
    own = _read_folder(directory, shape, float(holdout), _fingerprint(directory))
    if class_names is not None and list(class_names) != list(own.class_names):
        raise ConfigError(f"Image folder {directory!r} now has the classes {list(own.class_names)}, the run "
                          f"{list(class_names)}: train a new run on it.")
    return own


def _fingerprint(directory: str) -> tuple:
    """Every file under ``directory`` with its size and modification time: a cached read is reused only while
    this is unchanged."""
    found = []
    for root, _, names in os.walk(directory):
        for name in names:
            stat = os.stat(os.path.join(root, name))
            found.append((os.path.relpath(os.path.join(root, name), directory), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


@functools.lru_cache(maxsize=2)
def _read_folder(directory: str, image_shape: tuple, holdout: float, fingerprint: tuple) -> OwnData:
    """read_folder's reading, cached while the folder's ``fingerprint`` holds: its layout decides the parts."""
    subfolders = class_folders(directory)
    named = {part: [n for n in subfolders if n in names] for part, names in FOLDER_PARTS.items()}
    if any(named.values()):
        return _read_parts(directory, image_shape, subfolders, named)
    images, labels, names, files = labelled_images(directory, image_shape)
    rel = np.asarray([os.path.relpath(f, directory) for f in files])
    return _held_out(images, labels, names, holdout, "image_folder", directory, rel)


def _read_parts(directory, image_shape, subfolders, named) -> OwnData:
    """A folder with train/, val/ and test/ subfolders, each one subfolder per class."""
    layout = "train/, val/ and test/ subfolders"
    missing = [FOLDER_PARTS[part][0] + "/" for part, found in named.items() if not found]
    if missing:
        have = " and ".join(f[0] + "/" for f in named.values() if f)
        raise ConfigError(f"Image folder {directory!r} has {have} but no {' or '.join(missing)}: give all three "
                          f"({layout}), or put the class folders directly in it to hold out validation and test "
                          "images.")
    twice = [found for found in named.values() if len(found) > 1]
    others = sorted(set(subfolders) - {n for found in named.values() for n in found})
    if twice or others:
        raise ConfigError(f"Image folder {directory!r} mixes its {layout} with {twice[0] if twice else others}: "
                          "give either the three part folders or the class folders.")
    classes = {part: class_folders(os.path.join(directory, found[0])) for part, found in named.items()}
    for part in ("validation", "test"):
        if classes[part] != classes["train"]:
            raise ConfigError(f"Image folder {directory!r}: the class folders of {named[part][0]}/ "
                              f"({', '.join(classes[part]) or 'none'}) differ from train/'s "
                              f"({', '.join(classes['train']) or 'none'}): every part needs the same classes.")
    rng = np.random.default_rng(SPLIT_SEED)
    parts, members, names = {}, {}, None
    for part, found in named.items():
        images, labels, names, files = labelled_images(os.path.join(directory, found[0]), image_shape)
        order = rng.permutation(len(labels))  # class folders are read in turn: mix them
        parts[part] = (images[order], labels[order])
        members[part] = [os.path.relpath(files[i], directory) for i in order]
    _check_classes(names, parts["train"][1], f"Image folder {directory!r}", "image", part="train/")
    return OwnData(parts, tuple(names), "image_folder", directory, directory, None, members)


def _check_classes(names, labels, where: str, noun: str, *, minimum: int = 1, part: str | None = None,
                   hint: str = "") -> None:
    """At least two classes, and ``minimum`` examples of each among ``labels`` (those of ``part``, if named)."""
    if len(names) < 2:
        raise ConfigError(f"{where} has {len(names)} class ({', '.join(map(str, names))}): an attack needs at "
                          "least 2 classes.")
    counts = np.bincount(labels, minlength=len(names))
    short = [k for k in range(len(names)) if counts[k] < minimum]
    if not short:
        return
    k = short[0]
    if part:
        raise ConfigError(f"{where}: class {names[k]!r} has no {noun}s in {part}: every class needs some to train "
                          "on.")
    raise ConfigError(f"{where}: class {names[k]!r} has {counts[k]} {noun}(s); holding out a validation and a test "
                      f"{noun} of every class needs at least {minimum} per class{hint}.")


def _held_out(images, labels, names, holdout, source, location, members) -> OwnData:
    """Splits one labelled set: ``holdout`` of each class (at least one) for validation, as many for test, the
    rest to train; every part in a seeded random order. ``members``: what each example is (a file, an index)."""
    folder = source == "image_folder"
    noun = "image" if folder else "example"
    if not 0 < holdout < 0.5:
        raise ConfigError(f"holdout must be in (0, 0.5): the share of each class held out for validation, and "
                          f"again for test. Received: {holdout!r}")
    _check_classes(names, labels, f"Image folder {location!r}" if folder else f"Your {source} data", noun,
                   minimum=MIN_PER_CLASS, hint=" (or give train/, val/ and test/ subfolders)" if folder else
                   " (or give a dict of the parts train, validation and test)")
    rng = np.random.default_rng(SPLIT_SEED)
    chosen = {part: [] for part in PARTS}
    for k in range(len(names)):
        mine = rng.permutation(np.flatnonzero(labels == k))
        n = min(max(1, round(holdout * len(mine))), (len(mine) - 1) // 2)
        for part, picked in zip(("validation", "test", "train"), (mine[:n], mine[n:2 * n], mine[2 * n:])):
            chosen[part].append(picked)
    parts, kept = {}, {}
    for part, picks in chosen.items():
        order = rng.permutation(np.concatenate(picks))
        parts[part] = (images[order], labels[order])
        kept[part] = [m.item() if hasattr(m, "item") else m for m in members[order]]
    return OwnData(parts, tuple(names), source, location, location if folder else None, holdout, kept)


def from_arrays(data, class_names=None, *, holdout: float = HOLDOUT) -> OwnData:
    """Your own labelled data given in Python, as :class:`OwnData`.

    ``data``: ``(x, y)`` arrays (float images [N, H, W, C] in [0, 1], integer labels [N]), a ``tf.data.Dataset``
    of (images, labels), batched or not (read whole into memory; it must be finite), or a dict with the parts
    ``train``, ``validation`` and ``test``, each of those forms. A single set is split as an image folder is:
    ``holdout`` of each class held out for validation, as much for test, seeded. ``class_names`` default to
    "0", "1", ... up to the largest label. An :class:`OwnData` is returned as it is.
    """
    if isinstance(data, OwnData):
        return data
    if isinstance(data, dict):
        unknown = sorted(set(data) ^ set(PARTS))
        if unknown:
            raise ConfigError(f"Your data's parts must be exactly {', '.join(PARTS)}; got {', '.join(sorted(data))}.")
        read = {part: _arrays(data[part], f"data[{part!r}]") for part in PARTS}
        source = "tf.data" if isinstance(data["train"], tf.data.Dataset) else "arrays"
        names = _names(class_names, np.concatenate([read[p][1] for p in PARTS]))
        _check_classes(names, read["train"][1], f"Your {source} data", "example", part="its train part")
        _check_shapes(read)
        return OwnData(read, tuple(names), source, f"{source} given in Python (parts as given)")
    source = "tf.data" if isinstance(data, tf.data.Dataset) else "arrays"
    images, labels = _arrays(data, "data")
    names = _names(class_names, labels)
    return _held_out(images, labels, names, holdout, source, f"{source} given in Python", np.arange(len(labels)))


def _arrays(data, name: str):
    """(images float32 [N, H, W, C] in [0, 1], labels int32 [N]) from (x, y) or a dataset of (images, labels)."""
    if isinstance(data, tf.data.Dataset):
        if int(data.cardinality()) == tf.data.INFINITE_CARDINALITY:
            raise ConfigError(f"{name} is an endless tf.data.Dataset (repeat()): give one pass over your data.")
        pairs = list(data.as_numpy_iterator())
        if not pairs:
            raise ConfigError(f"{name} is an empty tf.data.Dataset.")
        batched = np.ndim(pairs[0][0]) == 4
        join = np.concatenate if batched else np.stack
        data = (join([p[0] for p in pairs]), join([p[1] for p in pairs]))
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ConfigError(f"{name} must be (images, labels) arrays, a tf.data.Dataset of (images, labels) or a dict "
                          f"of the parts {', '.join(PARTS)}; got {type(data).__name__}.")
    images = check_images(data[0], name=f"{name} images").numpy()
    labels = np.asarray(data[1])
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer) \
            or labels.min() < 0:
        raise ConfigError(f"{name} labels must be {len(images)} integers >= 0, one per image (class indices); got "
                          f"shape {labels.shape}, dtype {labels.dtype}.")
    return images.astype(np.float32), labels.astype(np.int32)


def _names(class_names, labels) -> list:
    if class_names is None:
        return [str(k) for k in range(int(labels.max()) + 1)]
    names = [str(n) for n in class_names]
    if labels.max() >= len(names):
        raise ConfigError(f"A label is {int(labels.max())}, but there are {len(names)} class names.")
    return names


def _check_shapes(parts: dict) -> None:
    shapes = {part: tuple(images.shape[1:]) for part, (images, _) in parts.items()}
    if len(set(shapes.values())) > 1:
        raise ConfigError(f"Your data's parts have different image shapes: {shapes}.")
