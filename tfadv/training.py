"""Running experiments: build data and model from a config, ``fit``, evaluate, save.

A run lives in one work directory::

    WORKDIR/config.json      resolved config (re-run with --config=WORKDIR/config.json)
    WORKDIR/logs/            TensorBoard: scalars (train/validation) and images/
    WORKDIR/images/          the same image grids as PNG files
    WORKDIR/backup/          BackupAndRestore state: rerunning a killed run resumes here
    WORKDIR/model.keras      the trained model (attacker.keras for perturbation runs: the x -> x_hat model)
    WORKDIR/metrics.json     evaluation on the eval split, with the data source used
"""

import dataclasses
import functools
import json
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfadv import config as config_lib
from tfadv import data as data_lib
from tfadv import distribute
from tfadv.callbacks import FailOnNonFinite, ImageGridLogger, TensorBoard
from tfadv.data.images import image_pairs
from tfadv.errors import ConfigError
from tfadv.evaluation import evaluate_classifier, load_target
from tfadv.experiments import (ClassifierExperiment, DataConfig, DefenseExperiment, OptimizerConfig,
                               PerturbationExperiment, StyleExperiment)
from tfadv.models import build_classifier, flip_average
from tfadv.models.generators import build_generator, perturbation_model
from tfadv.models.style import adain_network, gram_stack_network
from tfadv.models.universal import UniversalPerturbation
from tfadv.trainers import ClassifierTrainer, GANPerturbationTrainer, PerturbationTrainer, discriminator
from tfadv.trainers.defense import JointAdversarialTrainer, PGDAdversarialTrainer
from tfadv.trainers.style import StyleTransferTrainer

log = logging.getLogger("tfadv.training")


def make_optimizer(cfg: OptimizerConfig, steps_per_epoch: int, epochs: int) -> keras.optimizers.Optimizer:
    """Builds the optimizer, with a linear-warmup cosine schedule when ``cfg.schedule == "cosine"``."""
    lr = cfg.learning_rate
    if cfg.schedule == "cosine":
        total = max(1, steps_per_epoch * epochs)
        warmup = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else cfg.learning_rate, decay_steps=total - warmup,
            warmup_target=cfg.learning_rate if warmup else None, warmup_steps=warmup)
    if cfg.name == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay or None)
    if cfg.name == "adam":
        return keras.optimizers.Adam(lr)
    return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)


def load_split(cfg: DataConfig, split: str, *, training: bool, seed: int = 0):
    """Loads ``split`` as configured; training splits are shuffled (and augmented if asked)."""
    return data_lib.load(cfg.dataset, split, batch_size=cfg.batch_size, shuffle=training,
                         augment=training and cfg.augment, source=cfg.source, idx_dir=cfg.idx_dir,
                         tfds_data_dir=cfg.tfds_data_dir, seed=seed)


def steps_in(dataset: tf.data.Dataset, cap: int | None = None) -> int:
    """Batches per epoch of ``dataset`` (at most ``cap``); needs a known cardinality."""
    n = int(dataset.cardinality())
    if n < 0:
        if cap is None:
            raise ValueError("The dataset's length is unknown; set steps_per_epoch in the config.")
        return cap
    return min(n, cap) if cap else n


def standard_callbacks(workdir: str, backup_every_steps: int | None = None) -> list:
    """Fail on NaN/Inf, TensorBoard logging (epoch scalars every epoch, batch ones every 50 steps), and
    BackupAndRestore (resume a killed run by rerunning it)."""
    return [
        FailOnNonFinite(),
        TensorBoard(log_dir=os.path.join(workdir, "logs"), update_freq=50),
        keras.callbacks.BackupAndRestore(os.path.join(workdir, "backup"),
                                         save_freq=backup_every_steps or "epoch"),
    ]


def _classifier_grids(panel_ds: tf.data.Dataset):
    """grids_fn for ImageGridLogger: a fixed batch of eval images, and the misclassified ones among them."""
    images, labels = next(iter(panel_ds.unbatch().batch(256)))

    def grids(model):
        pred = np.argmax(model(images, training=False), -1)
        wrong = images.numpy()[pred != labels.numpy()][:32]
        out = {"eval_images": images[:32].numpy()}
        if len(wrong):
            out["misclassified"] = wrong
        return out

    return grids


def placed(runner):
    """Decorator of the ``train_*`` runners: they run inside the config's strategy and precision.

    Sets the Keras dtype policy (``mixed_precision``), enters the scope of the
    ``strategy`` (tfadv.distribute), and hands the runner its run folder:
    WORKDIR on the chief, WORKDIR/workers/worker-N on the other workers of a
    multi-worker cluster (their own backups, so every worker can resume).
    """

    @functools.wraps(runner)
    def run(cfg, workdir: str, verbose="auto"):
        cfg.validate()
        distribute.set_precision(cfg.mixed_precision)
        try:
            strategy = distribute.make_strategy(cfg.strategy)
            if not distribute.is_chief(strategy):
                workdir = os.path.join(workdir, "workers", f"worker-{strategy.cluster_resolver.task_id}")
            with strategy.scope():
                return runner(cfg, workdir, verbose)
        finally:
            distribute.set_precision(False)

    return run


RUNTIME_FIELDS = ("strategy", "jit_compile", "mixed_precision")  # may change when a run resumes elsewhere


def _recipe(config: dict) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in RUNTIME_FIELDS}, sort_keys=True)


def start_run(cfg, workdir: str) -> None:
    """Validates ``cfg``, creates the run folder with its config.json, and seeds every RNG.

    Refuses a folder holding a finished run (its metrics.json: nothing saved is
    overwritten) and resuming a killed run (backup/ present) with a different
    config than it started with (runtime fields aside).
    """
    cfg.validate()
    config_path = os.path.join(workdir, "config.json")
    if os.path.exists(os.path.join(workdir, "metrics.json")):
        raise ConfigError(f"{workdir} already holds a finished run (metrics.json): choose another --workdir or "
                          "delete that folder.")
    if os.path.isdir(os.path.join(workdir, "backup")) and os.path.exists(config_path):
        previous = config_lib.read_json(config_path)
        if _recipe(previous) != _recipe(json.loads(json.dumps(config_lib.to_dict(cfg)))):
            raise ConfigError(f"{workdir} holds a killed run started with a different config ({config_path}); "
                              "rerun it with --config=" + config_path + " to resume, or choose another --workdir.")
    os.makedirs(workdir, exist_ok=True)
    config_lib.save_json(cfg, config_path)
    keras.utils.set_random_seed(cfg.seed)


@dataclasses.dataclass
class Splits:
    """The datasets of a labelled run (see ``DataConfig``): ``train`` capped at ``steps`` batches per epoch,
    ``validation`` (held out of the training split, None when the config has none) for ``fit`` and the image
    panels, ``test`` (``eval_split``) measured once at the end."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    train_info: data_lib.LoadInfo
    test_info: data_lib.LoadInfo
    steps: int

    @property
    def panels(self) -> tf.data.Dataset:
        """What the image panels show during training: held-out images, never the test split."""
        return self.validation if self.validation is not None else self.train

    def final_metrics(self, cfg) -> dict:
        """The split facts every labelled run records beside its test figures."""
        return {"num_examples": self.test_info.num_examples, "split": cfg.data.eval_split,
                "validation_split": cfg.data.validation_split,
                "data_source": f"{self.test_info.source}:{self.test_info.location}"}


def labelled_splits(cfg) -> Splits:
    """Loads the train, validation and test splits of a config."""
    train_ds, train_info = load_split(cfg.data, cfg.data.train_split, training=True, seed=cfg.seed)
    validation = None
    if cfg.data.validation_split is not None:
        validation = shard_by_data(load_split(cfg.data, cfg.data.validation_split, training=False)[0])
    test_ds, test_info = load_split(cfg.data, cfg.data.eval_split, training=False)
    steps = steps_in(train_ds, cfg.steps_per_epoch)
    return Splits(shard_by_data(train_ds.take(steps)), validation, shard_by_data(test_ds), train_info, test_info,
                  steps)


def last_validation(history) -> dict:
    """The last epoch's validation figures of a ``fit`` history (``val_*`` keys), as floats."""
    return {key: float(values[-1]) for key, values in history.history.items() if key.startswith("val_")}


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Multi-worker runs split every global batch between the workers (our pipelines read arrays, not files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _step_count(optimizer) -> int:
    return int(tf.convert_to_tensor(optimizer.iterations.value))  # also a distributed (mirrored) variable


def finish_run(workdir: str, metrics: dict, trainer: keras.Model | None = None) -> dict:
    """Writes metrics.json into the run folder and logs it, with the trainer's optimizer step counts.

    The step counts (``optimizer_steps``, and ``g_optimizer_steps`` / ``d_optimizer_steps`` for two-player
    trainers) show that a resumed run continued its optimizers rather than starting over.
    """
    if trainer is not None:
        metrics["optimizer_steps"] = _step_count(trainer.optimizer)
        second = getattr(trainer, "SECOND_OPTIMIZER", None)
        if second:
            metrics[f"{second}_steps"] = _step_count(getattr(trainer, second))
    with open(os.path.join(workdir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    log.info("Run %s: %s", workdir, metrics)
    return metrics


@placed
def train_classifier(cfg: ClassifierExperiment, workdir: str, verbose="auto") -> tuple[keras.Model, dict]:
    """Trains a target classifier as configured; returns (trainer, metrics) and writes the run folder.

    ``trainer.classifier`` is the trained network; ``model.keras`` holds what
    is served (wrapped in the flip average when ``test_time_flip``).
    """
    start_run(cfg, workdir)
    splits = labelled_splits(cfg)
    spec = splits.train_info.spec
    kwargs = {"input_shape": list(spec.image_shape), "num_classes": spec.num_classes, **cfg.model_kwargs}
    trainer = ClassifierTrainer(build_classifier(cfg.model, **kwargs), label_smoothing=cfg.label_smoothing)
    trainer(tf.zeros((1,) + tuple(spec.image_shape)))  # build: a custom train_step never calls the model
    trainer.compile(optimizer=make_optimizer(cfg.optimizer, splits.steps, cfg.epochs), jit_compile=cfg.jit_compile)
    grids = ImageGridLogger(os.path.join(workdir, "logs"), _classifier_grids(splits.panels),
                            png_dir=os.path.join(workdir, "images"))
    start = time.time()
    history = distribute.ready_to_fit(trainer).fit(splits.train, validation_data=splits.validation,
                                                   epochs=cfg.epochs, callbacks=standard_callbacks(workdir) + [grids],
                                                   shuffle=False, verbose=verbose)
    train_seconds = time.time() - start
    model = flip_average(trainer.classifier) if cfg.test_time_flip else trainer.classifier
    model.save(os.path.join(workdir, "model.keras"))

    metrics = {
        "accuracy": evaluate_classifier(model, splits.test)["accuracy"], **splits.final_metrics(cfg),
        **last_validation(history), "train_seconds": round(train_seconds, 1), "epochs_run": len(history.epoch),
        "params": model.count_params(),
    }
    return trainer, finish_run(workdir, metrics, trainer)


def _perturbation_grids(panel_ds: tf.data.Dataset, attack=None):
    """grids_fn for ImageGridLogger: clean x, the amplified delta (grey = 0), and x_hat.

    ``attack(trainer, images, labels)`` makes x_hat (default: the trainer itself, an x -> x_hat model;
    defences pass their training attack, so TensorBoard shows what the classifier is being trained on).
    """
    images, labels = next(iter(panel_ds.unbatch().batch(32)))

    def grids(trainer):
        x_hat = attack(trainer, images, labels) if attack else trainer(images, training=False)
        delta = x_hat - images
        peak = tf.reduce_max(tf.abs(delta), axis=[1, 2, 3], keepdims=True)
        return {"x": images.numpy(), "delta_amplified": (0.5 + delta / (2 * tf.maximum(peak, 1e-8))).numpy(),
                "x_hat": x_hat.numpy()}

    return grids


def build_perturbation_trainer(cfg: PerturbationExperiment, classifier, image_shape):
    """The (uncompiled) trainer for a perturbation experiment, built on one batch of zeros."""
    generator = build_generator(cfg.generator, input_shape=tuple(image_shape),
                                output_activation="sigmoid" if cfg.mode == "joint" else "tanh",
                                **cfg.generator_kwargs)
    if cfg.mode == "universal":
        attacker = UniversalPerturbation(generator, cfg.norm, cfg.eps, noise_seed=cfg.seed,
                                         name=f"{cfg.generator}_universal")
    else:
        attacker = perturbation_model(generator, cfg.mode, cfg.norm, cfg.eps, name=f"{cfg.generator}_{cfg.mode}")
    common = dict(loss=cfg.loss, target_class=cfg.target_class, magnitude_weight=cfg.magnitude_weight,
                  magnitude_norm=cfg.magnitude_norm, kappa=cfg.kappa)
    if cfg.gan:
        trainer = GANPerturbationTrainer(attacker, classifier, discriminator(tuple(image_shape)),
                                         realism_weight=cfg.realism_weight, **common)
    else:
        trainer = PerturbationTrainer(attacker, classifier, **common)
    trainer(tf.zeros((1,) + tuple(image_shape)))  # build: a custom train_step never calls the model
    return trainer


@placed
def train_perturbation(cfg: PerturbationExperiment, workdir: str, verbose="auto"):
    """Trains a perturbation generator as configured; returns (trainer, metrics) and writes the run folder.

    The run folder holds ``attacker.keras`` (the x -> x_hat model that export
    turns into the zoo's SavedModel) instead of model.keras.
    """
    start_run(cfg, workdir)
    splits = labelled_splits(cfg)
    trainer = build_perturbation_trainer(cfg, load_target(cfg.target), splits.train_info.spec.image_shape)
    optimizer = make_optimizer(cfg.optimizer, splits.steps, cfg.epochs)
    if cfg.gan:
        trainer.compile(optimizer=optimizer, d_optimizer=keras.optimizers.Adam(cfg.d_learning_rate, beta_1=0.5),
                        jit_compile=cfg.jit_compile)
    else:
        trainer.compile(optimizer=optimizer, jit_compile=cfg.jit_compile)
    grids = ImageGridLogger(os.path.join(workdir, "logs"), _perturbation_grids(splits.panels),
                            png_dir=os.path.join(workdir, "images"))
    start = time.time()
    history = distribute.ready_to_fit(trainer).fit(splits.train, validation_data=splits.validation,
                                                   epochs=cfg.epochs, shuffle=False,
                                                   callbacks=standard_callbacks(workdir) + [grids], verbose=verbose)
    train_seconds = time.time() - start
    trainer.attacker.save(os.path.join(workdir, "attacker.keras"))
    measured = trainer.evaluate(splits.test, verbose=0, return_dict=True)
    metrics = {**{k: float(v) for k, v in measured.items()}, **splits.final_metrics(cfg), **last_validation(history),
               "train_seconds": round(train_seconds, 1), "epochs_run": len(history.epoch),
               "generator_params": trainer.attacker.count_params()}
    return trainer, finish_run(workdir, metrics, trainer)


def build_style_network(cfg: StyleExperiment):
    """The style network of a style experiment."""
    if cfg.method == "gram":
        return gram_stack_network(size=cfg.size, vgg_weights=cfg.vgg_weights, **cfg.network_kwargs)
    return adain_network(size=cfg.size, vgg_weights=cfg.vgg_weights, **cfg.network_kwargs)


def _style_grids(pairs: tf.data.Dataset):
    """grids_fn for ImageGridLogger: content | style | output rows of a fixed batch."""
    content, style = next(iter(pairs.unbatch().batch(8)))

    def grids(trainer):
        return {"content": content.numpy(), "style": style.numpy(),
                "output": trainer({"content": content, "style": style}).numpy()}

    return grids


@placed
def train_style(cfg: StyleExperiment, workdir: str, verbose="auto"):
    """Trains a style network as configured; returns (trainer, metrics). The run folder holds model.keras."""
    start_run(cfg, workdir)
    pairs = image_pairs(cfg.content_dir, cfg.style_dir, cfg.size, cfg.batch_size, cfg.seed)
    trainer = StyleTransferTrainer(build_style_network(cfg), cfg.method, cfg.content_weight, cfg.style_weight,
                                   cfg.tv_weight, vgg_weights=cfg.vgg_weights)
    sample = next(iter(pairs))
    trainer({"content": sample[0][:1], "style": sample[1][:1]})  # build before fit / save
    steps = steps_in(pairs, cfg.steps_per_epoch)
    pairs_epoch = shard_by_data(pairs.take(steps))
    trainer.compile(optimizer=make_optimizer(cfg.optimizer, steps, cfg.epochs), jit_compile=cfg.jit_compile)
    grids = ImageGridLogger(os.path.join(workdir, "logs"), _style_grids(pairs),
                            png_dir=os.path.join(workdir, "images"))
    start = time.time()
    history = distribute.ready_to_fit(trainer).fit(pairs_epoch, epochs=cfg.epochs, shuffle=False,
                                                   callbacks=standard_callbacks(workdir) + [grids], verbose=verbose)
    trainer.network.save(os.path.join(workdir, "model.keras"))
    metrics = {**{k: float(v[-1]) for k, v in history.history.items()},
               "first_epoch_loss": float(history.history["loss"][0]),
               "train_seconds": round(time.time() - start, 1), "epochs_run": len(history.epoch),
               "params": trainer.network.count_params(), "vgg_weights": cfg.vgg_weights}
    return trainer, finish_run(workdir, metrics, trainer)


def build_defense_trainer(cfg: DefenseExperiment, image_shape, num_classes):
    """The (uncompiled, built) defence trainer of a defence experiment, around a fresh classifier."""
    classifier = build_classifier(cfg.model, **{"input_shape": list(image_shape), "num_classes": num_classes,
                                                **cfg.model_kwargs})
    if cfg.method == "pgd":
        trainer = PGDAdversarialTrainer(classifier, cfg.norm, cfg.eps, steps=cfg.pgd_steps,
                                        adversarial_fraction=cfg.adversarial_fraction)
    else:
        generator = build_generator(cfg.generator, input_shape=tuple(image_shape), output_activation="tanh",
                                    **cfg.generator_kwargs)
        trainer = JointAdversarialTrainer(classifier, perturbation_model(generator, "thresholded", cfg.norm, cfg.eps),
                                          adversarial_fraction=cfg.adversarial_fraction,
                                          generator_steps=cfg.generator_steps, refine_steps=cfg.refine_steps,
                                          norm=cfg.norm, eps=cfg.eps)
    trainer(tf.zeros((1,) + tuple(image_shape)))
    return trainer


@placed
def train_defense(cfg: DefenseExperiment, workdir: str, verbose="auto"):
    """Trains a defended classifier as configured; returns (trainer, metrics).

    The run folder holds ``model.keras`` (the defended classifier, what export
    publishes) and, for the joint method, ``attacker.keras`` (its co-trained generator).
    """
    start_run(cfg, workdir)
    splits = labelled_splits(cfg)
    spec = splits.train_info.spec
    trainer = build_defense_trainer(cfg, spec.image_shape, spec.num_classes)
    optimizer = make_optimizer(cfg.optimizer, splits.steps, cfg.epochs)
    if cfg.method == "joint":
        trainer.compile(optimizer=optimizer, g_optimizer=keras.optimizers.Adam(cfg.g_learning_rate),
                        jit_compile=cfg.jit_compile)
    else:
        trainer.compile(optimizer=optimizer, jit_compile=cfg.jit_compile)
    grids = ImageGridLogger(os.path.join(workdir, "logs"),
                            _perturbation_grids(splits.panels, lambda t, x, y: t.adversarial(x, y)),
                            png_dir=os.path.join(workdir, "images"))
    start = time.time()
    history = distribute.ready_to_fit(trainer).fit(splits.train, validation_data=splits.validation,
                                                   epochs=cfg.epochs, shuffle=False,
                                                   callbacks=standard_callbacks(workdir) + [grids], verbose=verbose)
    train_seconds = time.time() - start
    trainer.classifier.save(os.path.join(workdir, "model.keras"))
    if cfg.method == "joint":
        trainer.attacker.save(os.path.join(workdir, "attacker.keras"))
    measured = trainer.evaluate(splits.test, verbose=0, return_dict=True)
    metrics = {**{k: float(v) for k, v in measured.items()}, "accuracy": float(measured["clean_accuracy"]),
               **splits.final_metrics(cfg), **last_validation(history), "train_seconds": round(train_seconds, 1),
               "epochs_run": len(history.epoch)}
    return trainer, finish_run(workdir, metrics, trainer)


RUNNERS = {"classifier": train_classifier, "perturbation": train_perturbation, "style": train_style,
           "defense": train_defense}


def run_experiment(cfg, workdir: str, verbose="auto"):
    """Trains any experiment config (dispatching on ``cfg.kind``); returns (model, metrics)."""
    return RUNNERS[cfg.kind](cfg, workdir, verbose=verbose)
