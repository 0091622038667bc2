"""The experiment config schema: one dataclass per experiment kind, and its validation.

Configs are leaf data: every field has a default, ``validate()`` checks a config's
values once, before anything is built, and ``tfadv.config`` turns a config into
JSON and back. This module imports no registry of code (models, generators,
losses, defense methods, targets): the names a config gives are checked where
they are built, by the task of its kind (``tfadv.tasks``' ``check``), right after
the config is read and before any data is loaded. Named recipes (filled-in
configs) live in :mod:`tfadv.recipes`; the registry of names is
:mod:`tfadv.experiments`.
"""

import dataclasses
import math
from typing import Any

from tfadv.data import SOURCES, DatasetSpec, get_spec, own, parse_split
from tfadv.errors import ConfigError

MAX_SEED = 2**32 - 1  # what keras.utils.set_random_seed (numpy's generator) takes


def check_finite(config, prefix: str = "") -> None:
    """Refuses NaN and inf in every float field of a config and its sections: they pass every ``<`` / ``>``
    range check (NaN compares false) and reach training as silent garbage."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            check_finite(value, f"{prefix}{field.name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{prefix}{field.name} must be a finite number. Received: {value!r}")


def check_positive(**values) -> None:
    """Refuses a value that is not > 0 (a negative learning rate trains a player backwards)."""
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{name} must be > 0. Received: {value!r}")


@dataclasses.dataclass
class DataConfig:
    """Which data to read and how to batch it.

    Three disjoint splits: the model trains on ``train_split``; ``validation_split``, a held-out slice of the
    training data, is the validation data during training and the one to choose recipes, epochs and
    checkpoints by; ``eval_split`` (the test split) is measured once, at the end, for metrics.json and the
    zoo. ``validation_split: null`` means no validation during training (configs written before it existed
    read back that way).

    ``dataset: "own"`` is your own labelled data (:mod:`tfadv.data.own`), whose splits are its parts
    ``train``, ``validation`` and ``test``: ``image_dir`` is the image folder read (null: arrays or a
    ``tf.data.Dataset`` given in Python, ``tfadv.training.run_experiment(..., data=...)``), ``image_shape`` the
    (H, W, C) its images are resized to (the target classifier's input), ``class_names`` its classes and
    ``holdout`` the share of each class held out for validation and again for test when the folder is one
    class-folder tree. These four fields mean nothing for a registered dataset.
    """

    dataset: str = "fashion_mnist"
    source: str = "auto"
    idx_dir: str | None = None
    tfds_data_dir: str | None = None
    batch_size: int = 128
    augment: bool = True
    train_split: str = "train[:90%]"
    validation_split: str | None = "train[90%:]"
    eval_split: str = "test"
    image_dir: str | None = None
    image_shape: list[int] | None = None
    class_names: list[str] | None = None
    holdout: float = own.HOLDOUT

    def spec(self) -> DatasetSpec:
        """The dataset's facts: the catalog's, or those this config records for your own data."""
        if self.dataset != own.OWN:
            return get_spec(self.dataset)
        return DatasetSpec(own.OWN, tuple(self.image_shape), len(self.class_names),
                           class_names=tuple(self.class_names))

    def validate(self):
        if self.dataset == own.OWN:
            self._validate_own()
        else:
            get_spec(self.dataset)
        if self.source not in SOURCES:
            raise ConfigError(f"data.source must be one of {SOURCES}. Received: {self.source!r}")
        if self.batch_size <= 0:
            raise ConfigError(f"data.batch_size must be > 0. Received: {self.batch_size!r}")
        held_out = {"data.validation_split": self.validation_split, "data.eval_split": self.eval_split}
        for name, split in held_out.items():
            if split is not None and splits_overlap(self.train_split, split):
                raise ConfigError(f"{name}={split!r} overlaps data.train_split={self.train_split!r}: "
                                  "held-out data must not be trained on.")
        if self.validation_split is not None and splits_overlap(self.validation_split, self.eval_split):
            raise ConfigError(f"data.validation_split={self.validation_split!r} overlaps data.eval_split="
                              f"{self.eval_split!r}: the test split is measured once, at the end, never "
                              "used to choose anything.")

    def _validate_own(self):
        shape = self.image_shape
        if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape)
                and shape[2] in (1, 3)):
            raise ConfigError(f"data.image_shape of your own data must be [height, width, channels] with 1 or 3 "
                              f"channels. Received: {shape!r}")
        if not isinstance(self.class_names, list) or len(self.class_names) < 2:
            raise ConfigError(f"data.class_names of your own data must list at least 2 classes. Received: "
                              f"{self.class_names!r}")
        if not 0 < self.holdout < 0.5:
            raise ConfigError(f"data.holdout must be in (0, 0.5). Received: {self.holdout!r}")
        for name in ("train_split", "validation_split", "eval_split"):
            split = getattr(self, name)
            if split is not None and parse_split(split)[0] not in own.PARTS:
                raise ConfigError(f"data.{name}={split!r}: your own data's parts are {', '.join(own.PARTS)} "
                                  "(optionally sliced, e.g. 'test[:100]').")


def splits_overlap(a: str, b: str) -> bool:
    """Whether two split specs ("train", "train[:90%]", "test[:1000]") can share examples.

    Slices of the same base split overlap when their ranges intersect; ranges given in different units (percent
    and example counts) cannot be compared without the split's size, so they count as overlapping.
    """
    (base_a, slice_a), (base_b, slice_b) = parse_split(a), parse_split(b)
    if base_a != base_b:
        return False
    bounds = [_bounds(slice_a), _bounds(slice_b)]
    if None in bounds:
        return True
    (start_a, stop_a), (start_b, stop_b) = bounds
    return max(start_a, start_b) < min(stop_a, stop_b)


def _bounds(part: slice) -> tuple[float, float] | None:
    """(start, stop) in percent of the split, or None when a bound is an example count."""
    values = []
    for bound, default in ((part.start, 0.0), (part.stop, 100.0)):
        if bound is None:
            values.append(default)
        elif bound.endswith("%"):
            percent = float(bound[:-1])
            values.append(100.0 + percent if percent < 0 else percent)  # -10%: the last tenth starts at 90%
        else:
            return None
    return values[0], values[1]


@dataclasses.dataclass
class OptimizerConfig:
    """Optimizer and learning-rate schedule."""

    name: str = "adamw"  # adamw | adam | sgd
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine (with linear warmup) | constant
    warmup_epochs: float = 0.0
    momentum: float = 0.9  # sgd only
    # Weight decay on biases and normalisation scales/offsets too. False: kernels only, the usual AdamW practice
    # (decaying BatchNorm's gamma shrinks what the next layer sees). Configs written before this field decayed
    # every weight and read back with True (tfadv.experiments.from_dict).
    decay_norms_and_biases: bool = False

    def validate(self):
        if self.name not in ("adamw", "adam", "sgd"):
            raise ConfigError(f"optimizer.name must be adamw, adam or sgd. Received: {self.name!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"optimizer.schedule must be cosine or constant. Received: {self.schedule!r}")
        check_positive(**{"optimizer.learning_rate": self.learning_rate})
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"optimizer.momentum must be in [0, 1). Received: {self.momentum!r}")
        if self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ConfigError("optimizer.weight_decay and optimizer.warmup_epochs must be >= 0. "
                              f"Received: {self.weight_decay!r}, {self.warmup_epochs!r}")


@dataclasses.dataclass
class RuntimeConfig:
    """Where and how a run computes, shared by every kind: not part of the recipe (a killed run may resume on
    another machine with other settings, and the same recipe trains the same model on any of them)."""

    strategy: str = "default"  # tfadv.config.STRATEGIES; data.batch_size is the global batch
    jit_compile: bool = False  # XLA-compile the train step (pays off on GPUs; slower on this 2-core CPU)
    mixed_precision: bool = False  # mixed_float16 compute with loss scaling (GPUs with tensor cores)

    def validate(self):
        from tfadv.config import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}. Received: {self.strategy!r}")
        if self.strategy == "tpu" and self.mixed_precision:
            raise ConfigError("mixed_precision is float16 with loss scaling, for GPUs; TPUs compute in bfloat16 "
                              "without it: drop --mixed_precision for strategy=tpu.")


RUNTIME_FIELDS = tuple(field.name for field in dataclasses.fields(RuntimeConfig))


@dataclasses.dataclass
class ScheduleConfig:
    """Fields every trained experiment has: optimizer, schedule length, seed, and the runtime section."""

    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    epochs: int = 10
    steps_per_epoch: int | None = None  # cap per epoch, for quick runs
    seed: int = 0
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    def validate(self):
        check_finite(self)
        self.optimizer.validate()
        self.runtime.validate()
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be in [0, {MAX_SEED}]. Received: {self.seed!r}")
        if self.epochs <= 0:
            raise ConfigError(f"epochs must be > 0. Received: {self.epochs!r}")
        if self.steps_per_epoch is not None and self.steps_per_epoch <= 0:
            raise ConfigError(f"steps_per_epoch must be > 0 or null. Received: {self.steps_per_epoch!r}")
        return self


@dataclasses.dataclass
class TrainingConfig(ScheduleConfig):
    """A trained experiment on a labelled dataset (tfadv.data)."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)

    def validate(self):
        super().validate()
        self.data.validate()
        return self


@dataclasses.dataclass
class ClassifierExperiment(TrainingConfig):
    """Training a target classifier with ``compile`` / ``fit``."""

    kind: str = "classifier"
    model: str = "small_cnn"
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    label_smoothing: float = 0.0
    test_time_flip: bool = False  # serve the mean logits of the image and its mirror (tfadv.models.flip_average)

    def validate(self):
        super().validate()
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1). Received: {self.label_smoothing!r}")
        if self.test_time_flip and not self.data.spec().flip_augment:
            raise ConfigError(f"test_time_flip: a mirror image of {self.data.dataset} does not keep its label.")
        return self


@dataclasses.dataclass
class PerturbationExperiment(TrainingConfig):
    """Training a perturbation generator against a frozen target classifier.

    ``target`` is a zoo entry name (its SavedModel, checksum-verified) or a path
    to a ``.keras`` classifier. ``mode``: "thresholded" (tanh delta scaled to
    ``eps`` in ``norm``; set magnitude_weight 0), "joint" (x_hat directly,
    ``magnitude_weight`` * ||x_hat - x||_magnitude_norm in the loss) or
    "universal" (one U from fixed noise drawn with ``seed``, scaled to ``eps``,
    added to every image). ``gan`` adds the discriminator realism term with
    weight ``realism_weight``. ``loss_settings`` are the loss's own settings, as
    plain data (cw's margin: ``--set loss_settings.kappa=5``): the perturbation
    task reads them into the settings dataclass the loss registered, with its
    defaults, and the run's config.json records them complete.
    """

    kind: str = "perturbation"
    target: str = "fashion_mnist_small_cnn"
    generator: str = "unet"
    generator_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    mode: str = "thresholded"
    norm: str = "l2"
    eps: float = 2.4
    loss: str = "untargeted"
    target_class: int | None = None
    loss_settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    magnitude_weight: float = 0.0
    magnitude_norm: str = "l2"
    gan: bool = False
    realism_weight: float = 1.0
    d_learning_rate: float = 2e-4
    d_beta_1: float = 0.5  # the discriminator's Adam beta_1 (DCGAN's choice)
    # Transfer training (tfadv.trainers.transfer): the chance a step shows the target resized and padded, and
    # for loss "feature_separation" (LTP) the mid layer tapped in each member of the (``+``-joined) target.
    input_diversity: float = 0.0
    feature_layers: list[str] = dataclasses.field(default_factory=list)

    def validate(self):
        """Values only; the generator, mode, loss (and its settings) and feature layers are checked by the
        perturbation task."""
        super().validate()
        from tfadv.budgets import NORMS, check_budget

        check_budget(self.norm, self.eps, self.data.spec().image_shape)
        if not 0 <= self.input_diversity <= 1:
            raise ConfigError(f"input_diversity must be a probability in [0, 1]. Received: {self.input_diversity!r}")
        if (self.input_diversity or self.feature_layers) and (self.gan or self.mode != "thresholded"):
            raise ConfigError("input_diversity and feature_separation train transfer generators: mode "
                              "'thresholded', without gan.")
        if self.magnitude_norm not in NORMS:
            raise ConfigError(f"magnitude_norm must be one of {NORMS}. Received: {self.magnitude_norm!r}")
        if self.magnitude_weight < 0 or self.realism_weight < 0:
            raise ConfigError("magnitude_weight and realism_weight must be >= 0. "
                              f"Received: {self.magnitude_weight!r}, {self.realism_weight!r}")
        if not 0 <= self.d_beta_1 < 1:
            raise ConfigError(f"d_beta_1 must be in [0, 1). Received: {self.d_beta_1!r}")
        check_positive(d_learning_rate=self.d_learning_rate)
        if self.mode == "joint" and not (self.magnitude_weight or self.gan):
            raise ConfigError("mode='joint' needs magnitude_weight > 0 or gan=true: otherwise nothing keeps "
                              "x_hat close to x.")
        return self


# Defense methods renamed since configs were first written: old name -> today's. ``tfadv.experiments.from_dict``
# reads a config (a run's config.json, a registry entry) of an old name as today's; a config given the old name
# now (``--set method=joint``) is refused with today's.
RENAMED_DEFENSE_METHODS = {"joint": "co_trained"}


@dataclasses.dataclass
class DefenseExperiment(TrainingConfig):
    """Training a defended classifier from scratch with a registered defense method (``tfadv.trainers.defense``).

    What every method shares: ``method`` (its registered name: "pgd", "fgsm", "trades", "co_trained", or your own),
    the classifier (``model``, ``model_kwargs``; a ``.keras`` file is your own), the budget the training attack
    keeps to (``norm``, ``eps``) and the overfitting guard (``guard_max_drop``: stop when held-out PGD-10
    accuracy falls this much in an epoch; null: off). ``settings`` are the method's own, as plain data (``--set
    settings.steps=3``): the defense task reads them into the settings dataclass the method registered, with its
    defaults, and the method checks them; the run's config.json records them complete.
    """

    kind: str = "defense"
    method: str = "co_trained"
    model: str = "small_cnn"
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    norm: str = "linf"
    eps: float = 0.1
    guard_max_drop: float | None = None
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def validate(self):
        """Values only; the method, its settings and the model are checked by the defense task."""
        super().validate()
        if self.method in RENAMED_DEFENSE_METHODS:
            new = RENAMED_DEFENSE_METHODS[self.method]
            raise ConfigError(f"Defense method {self.method!r} was renamed {new!r}: --set method={new}.")
        from tfadv.budgets import check_budget

        check_budget(self.norm, self.eps, self.data.spec().image_shape)
        if self.guard_max_drop is not None and not 0 < self.guard_max_drop < 1:
            raise ConfigError(f"guard_max_drop must be in (0, 1) or null. Received: {self.guard_max_drop!r}")
        if self.guard_max_drop is not None and self.data.validation_split is None:
            raise ConfigError("guard_max_drop measures held-out images: set data.validation_split (without it the "
                              "guard would watch training images).")
        return self


@dataclasses.dataclass
class StyleExperiment(ScheduleConfig):
    """Training a style-transfer network on (content, style) pairs from two image folders.

    ``method``: "gram" (the seed's Gram-stack network) or "adain". ``encoder``: the
    networks' encoder and the losses' loss network: "vgg16" (``vgg_weights``:
    "imagenet", a local VGG16 weights file, or null: random, for tests only) or
    "random_vgg19" (seeded normalised random weights that need no download;
    ``encoder_kwargs``: ``seed``, ``width``). ``identity_weight``: the pixel
    reconstruction term of the network given the content image as its own style
    (0: off), which lets a decoder learn against a random encoder.
    """

    kind: str = "style"
    method: str = "gram"
    content_dir: str = "data/content"
    style_dir: str = "data/style"
    size: int = 256
    batch_size: int = 4
    network_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    vgg_weights: str | None = "imagenet"
    encoder: str = "vgg16"
    encoder_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 0.0
    identity_weight: float = 0.0

    def validate(self):
        super().validate()
        if self.method not in ("gram", "adain"):
            raise ConfigError(f"method must be gram or adain. Received: {self.method!r}")
        if self.encoder not in ("vgg16", "random_vgg19"):
            raise ConfigError(f"encoder must be vgg16 or random_vgg19. Received: {self.encoder!r}")
        unknown = set(self.encoder_kwargs) - ({"seed", "width"} if self.encoder == "random_vgg19" else set())
        if unknown:
            raise ConfigError(f"encoder_kwargs of {self.encoder} takes no {sorted(unknown)}.")
        multiple = 16 if self.method == "gram" or self.encoder == "random_vgg19" else 8
        if self.size <= 0 or self.size % multiple:
            raise ConfigError(f"size must be a positive multiple of {multiple}. Received: {self.size!r}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be > 0. Received: {self.batch_size!r}")
        if min(self.content_weight, self.style_weight, self.tv_weight, self.identity_weight) < 0:
            raise ConfigError("content_weight, style_weight, tv_weight and identity_weight must be >= 0.")
        return self


KINDS: dict[str, type] = {"classifier": ClassifierExperiment, "perturbation": PerturbationExperiment,
                          "style": StyleExperiment, "defense": DefenseExperiment}
