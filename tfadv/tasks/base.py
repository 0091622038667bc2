"""The task interface and the data of a run (see the package doc)."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfadv import config as config_lib
from tfadv import data as data_lib
from tfadv import figures
from tfadv.data import own as own_lib
from tfadv.errors import ConfigError
from tfadv.models.generators import fitting_depth

DEPTH_GENERATORS = ("unet", "autoencoder")  # generators whose depth (2x downsamplings) fits the image size


@dataclasses.dataclass
class RunData:
    """The datasets of a run: ``train`` capped at ``steps`` batches per epoch; ``validation`` (held out of the
    training split; None when the config has none, and for style runs) for ``fit`` and the image panels;
    ``test`` (``eval_split``) measured once, at the end (None for style runs)."""

    train: tf.data.Dataset
    steps: int
    validation: tf.data.Dataset | None = None
    test: tf.data.Dataset | None = None
    test_info: data_lib.LoadInfo | None = None
    spec: data_lib.DatasetSpec | None = None
    own: own_lib.OwnData | None = None  # your own data (dataset "own"): what went where is recorded from it

    @property
    def panels(self) -> tf.data.Dataset:
        """What the image panels show during training: held-out images, never the test split."""
        return self.validation if self.validation is not None else self.train

    def split_facts(self, cfg) -> dict:
        """The split facts a labelled run records beside its test figures."""
        if self.test_info is None:
            return {}
        facts = {"num_examples": self.test_info.num_examples, "split": cfg.data.eval_split,
                 "validation_split": cfg.data.validation_split,
                 "data_source": f"{self.test_info.source}:{self.test_info.location}"}
        if self.own is not None:
            facts["data_parts"] = self.own.counts()  # the examples of each part; data_split.json lists them
        return facts


def load_split(cfg, split: str, *, training: bool, seed: int = 0, field: str = "data split",
               own: own_lib.OwnData | None = None, batch_size: int | None = None):
    """Loads ``split`` of a ``DataConfig``; training splits are shuffled (and augmented if asked).

    Your own data (dataset "own") is ``own``, or else the config's ``image_dir`` read again. An empty split is
    refused here, before any training: an empty test split used to fail only after the run.
    """
    batch_size = batch_size or cfg.batch_size
    if cfg.dataset == own_lib.OWN:
        ds, info = own_lib.load(own or own_data(cfg), split, batch_size=batch_size, shuffle=training, seed=seed)
    else:
        ds, info = data_lib.load(cfg.dataset, split, batch_size=batch_size, shuffle=training,
                                 augment=training and cfg.augment, source=cfg.source, idx_dir=cfg.idx_dir,
                                 tfds_data_dir=cfg.tfds_data_dir, seed=seed)
    if info.num_examples == 0 or int(ds.cardinality()) == 0:
        raise ConfigError(f"{field}={split!r} of {cfg.dataset} ({info.source}: {info.location}) holds no examples: "
                          "choose a non-empty split.")
    return ds, info


def steps_in(dataset: tf.data.Dataset, cap: int | None = None) -> int:
    """Batches per epoch of ``dataset`` (at most ``cap``); needs a known cardinality."""
    n = int(dataset.cardinality())
    if n < 0:
        if cap is None:
            raise ValueError("The dataset's length is unknown; set steps_per_epoch in the config.")
        return cap
    return min(n, cap) if cap else n


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Multi-worker runs split every global batch between the workers (our pipelines read arrays, not files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def own_data(data_cfg) -> own_lib.OwnData:
    """The own data a config's data section names: its ``image_dir``, read and split again as the run did."""
    if not data_cfg.image_dir:
        raise ConfigError("This config's data (dataset 'own', no data.image_dir) was given in Python as arrays or a "
                          "tf.data.Dataset: pass it again (run_experiment(..., data=...), export_run(..., data=...)).")
    return own_lib.read_folder(data_cfg.image_dir, data_cfg.image_shape, holdout=data_cfg.holdout,
                               class_names=data_cfg.class_names)


def labelled_data(cfg, own: own_lib.OwnData | None = None) -> RunData:
    """The train, validation and test splits of a labelled config (``cfg.data``); for your own data (dataset
    "own"), those parts of ``own``, or of the config's ``image_dir`` read again."""
    if cfg.data.dataset == own_lib.OWN:
        own = own or own_data(cfg.data)
    train, train_info = load_split(cfg.data, cfg.data.train_split, training=True, seed=cfg.seed,
                                   field="data.train_split", own=own)
    validation = None
    if cfg.data.validation_split is not None:
        validation = shard_by_data(load_split(cfg.data, cfg.data.validation_split, training=False,
                                              field="data.validation_split", own=own)[0])
    test, test_info = load_split(cfg.data, cfg.data.eval_split, training=False, field="data.eval_split", own=own)
    steps = steps_in(train, cfg.steps_per_epoch)
    return RunData(shard_by_data(train.take(steps)), steps, validation, shard_by_data(test), test_info,
                   train_info.spec, own)


def use_own_data(cfg, own: own_lib.OwnData, *, fit_depth: bool | None = None):
    """``cfg`` set to train on your own data ``own`` (:mod:`tfadv.data.own`), validated.

    The data section records it (dataset "own", the folder, image shape, classes, hold-out share). A config
    made for another dataset also gets the parts as its splits (train, validation, test), no augmentation,
    and a U-Net or autoencoder generator of the depth that fits the image size
    (:func:`tfadv.models.generators.fitting_depth`: its recipe chose the depth for its own dataset's images);
    ``fit_depth`` says otherwise (False: keep the config's depth). A config already for your own data keeps
    its splits and depth.
    """
    converting = cfg.data.dataset != own_lib.OWN
    overrides = {"data.dataset": own_lib.OWN, "data.image_dir": own.directory,
                 "data.image_shape": list(own.image_shape), "data.class_names": list(own.class_names)}
    if own.holdout is not None:
        overrides["data.holdout"] = own.holdout
    if converting:
        overrides.update({"data.train_split": "train", "data.validation_split": "validation",
                          "data.eval_split": "test", "data.augment": False})
    settings = getattr(cfg, "settings", None)  # a defense names the generator it co-trains in its settings
    prefix, generator = (("settings.", settings.get("generator")) if isinstance(settings, dict)
                         else ("", getattr(cfg, "generator", None)))
    if (converting if fit_depth is None else fit_depth) and generator in DEPTH_GENERATORS:
        overrides[f"{prefix}generator_kwargs.depth"] = fitting_depth(own.image_shape)
    return config_lib.override(cfg, overrides).validate()


def attack_panels(panel_ds: tf.data.Dataset, class_names, attack, classifier, target_class=None, count: int = 8):
    """grids_fn for ImageGridLogger: the labelled x | amplified delta | x_hat figure of a fixed batch.

    ``attack(trainer, images, labels)`` makes x_hat, ``classifier(trainer)`` is the model it attacks.
    """
    images, labels = next(iter(panel_ds.unbatch().batch(count)))

    def grids(trainer):
        x_hat = attack(trainer, images, labels)
        model = classifier(trainer)
        clean = np.argmax(model(images, training=False), -1)
        adv = np.argmax(model(x_hat, training=False), -1)
        return {"attack": figures.attack_figure(images.numpy(), np.asarray(x_hat), labels.numpy(), clean, adv,
                                                class_names, target_class=target_class)}

    return grids


@dataclasses.dataclass(frozen=True)
class Companion:
    """A second artifact of a run that export publishes as its own zoo entry, named ``<entry><suffix>``
    (a co_trained defense's generator), measured against the run's own entry."""

    suffix: str
    artifact: str
    zoo_kind: str
    fields: dict


class Task:
    """What the generic runner, export and evaluation ask of an experiment kind.

    Subclasses set ``kind`` and override the training hooks (``build``, ``panels``,
    ``save``, ``measure``) and, where their artifact is not an images -> logits
    classifier, the export hooks (``zoo_kind``, ``entry_fields``, ``attack_target``,
    ``companions``; ``exported_figures`` for unlabelled kinds).
    """

    kind: str = ""
    artifact: str = "model.keras"  # the run folder's trained model: what export publishes
    labelled: bool = True  # measured on a labelled split (data.eval_split); style runs are not

    def check(self, cfg):
        """Checks the names ``cfg`` gives (models, generators, losses, defense methods and their settings) against
        the registries that build them, with one-line ConfigErrors, and returns the config as its run records it.

        Configs are leaf data (:mod:`tfadv.schema` imports no registry), so these checks live here, with the code
        that builds from them; the runner calls them right after reading and overriding a config, before any data
        is loaded (:func:`tfadv.tasks.checked`).
        """
        return cfg

    def data(self, cfg) -> RunData:
        return labelled_data(cfg)

    def build(self, cfg, data: RunData) -> keras.Model:
        """The trainer, built (called once) so that fit, save and BackupAndRestore see its variables."""
        raise NotImplementedError

    def compile(self, trainer: keras.Model, cfg, optimizer) -> None:
        trainer.compile(optimizer=optimizer, jit_compile=cfg.runtime.jit_compile)

    def callbacks(self, cfg, data: RunData) -> list:
        """The kind's own callbacks, run before the shared ones (so TensorBoard logs what they add)."""
        return []

    def panels(self, cfg, data: RunData):
        """grids_fn for ImageGridLogger: ``trainer -> {name: figure [H, W, 3] or image batch}``."""
        raise NotImplementedError

    def save(self, trainer: keras.Model, cfg, workdir: str) -> None:
        raise NotImplementedError

    def measure(self, trainer: keras.Model, cfg, data: RunData, history) -> dict:
        """The run's figures (on the test split, for labelled kinds)."""
        raise NotImplementedError

    def keras_artifact(self, cfg, spec, companion: str | None = None) -> keras.Model:
        """A fresh, built copy of the model the run saves (``artifact``, or the companion with that suffix), with
        the variables in the order its SavedModel stores them: what :mod:`tfadv.presets` fills with a zoo
        entry's weights."""
        raise NotImplementedError(f"{self.kind} entries have no Keras form yet.")

    # Export: what the run's artifact becomes in the zoo (tfadv.export drives these).

    def zoo_kind(self, cfg) -> str:
        """The registry kind of the exported artifact (one of ``tfadv.zoo.KINDS``)."""
        return "classifier"

    def entry_fields(self, cfg) -> dict:
        """Registry fields of this kind beside the common ones (kind, dataset, metrics, config, ...)."""
        return {"output": "logits"}

    def attack_target(self, cfg) -> str | None:
        """The classifier the exported model is measured against (attack kinds); None for classifiers."""
        return None

    def companions(self, cfg) -> list[Companion]:
        """Further artifacts of the run published as their own entries."""
        return []

    def exported_figures(self, serve, cfg, workdir: str) -> dict:
        """The registry's figures of an unlabelled kind's exported ``serve`` (labelled kinds are measured on
        their eval split by ``tfadv.evaluation.measure_entry``)."""
        raise NotImplementedError
