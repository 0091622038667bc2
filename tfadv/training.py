"""Running experiments: one generic runner for every kind, and the run folder's lifecycle.

``run_experiment(cfg, workdir)`` asks the config's task (``tfadv.tasks``) for
its data and trainer, then does what every kind shares: compile, callbacks
(TensorBoard, image panels, divergence check, the run's backup), ``fit``,
save, measure on the test split, write metrics.json, drop the backup. A run
lives in one work directory, locked while a process trains in it::

    WORKDIR/config.json      resolved config (re-run with --config=WORKDIR/config.json)
    WORKDIR/logs/            TensorBoard: scalars (train/validation) and images/
    WORKDIR/images/          the same image panels as PNG files
    WORKDIR/backup/          one checkpoint per epoch (tfadv.backup): rerunning a killed run resumes here
    WORKDIR/.lock            held by the process training in the folder: a second one is refused
    WORKDIR/model.keras      the trained model (attacker.keras for perturbation runs: the x -> x_hat model)
    WORKDIR/metrics.json     figures on the test split, with the data source used
    WORKDIR/data_split.json  your own data (``run_experiment(..., data=...)``, an image folder): what went where
"""

import contextlib
import fcntl
import functools
import json
import logging
import os
import socket
import tempfile
import time

import keras
import tensorflow as tf

from tfadv import config as config_lib
from tfadv import distribute, experiments, faults, tasks, zoo
from tfadv.backup import ResumableCallback, RunBackup
from tfadv.callbacks import FailOnNonFinite, ImageGridLogger, TensorBoard
from tfadv.data import own as own_lib
from tfadv.errors import ConfigError
from tfadv.schema import OptimizerConfig

log = logging.getLogger("tfadv.training")


NOT_DECAYED = ("bias", "gamma", "beta")  # Keras' names of biases and normalisation scales / offsets
OWN_SPLIT_FILE = "data_split.json"  # a run on your own data: which example went to which part


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
        optimizer = keras.optimizers.SGD(lr, momentum=cfg.momentum, nesterov=True,
                                         weight_decay=cfg.weight_decay or None)
    elif cfg.name == "adam":
        return keras.optimizers.Adam(lr)
    else:
        optimizer = keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)
    if cfg.weight_decay and not cfg.decay_norms_and_biases:
        optimizer.exclude_from_weight_decay(var_names=list(NOT_DECAYED))
    return optimizer


def standard_callbacks(workdir: str, backup: RunBackup) -> list:
    """Fail on NaN/Inf, TensorBoard logging (epoch scalars every epoch, batch ones every 50 steps), and the
    run's backup (resume a killed run by rerunning it)."""
    return [FailOnNonFinite(), TensorBoard(log_dir=os.path.join(workdir, "logs"), update_freq=50), backup]


def placed(runner):
    """Decorator of the runner: it runs inside the config's strategy and precision.

    Sets the Keras dtype policy (``mixed_precision``), enters the scope of the
    ``strategy`` (tfadv.distribute), and hands the runner its run folder:
    WORKDIR on the chief, WORKDIR/workers/worker-N on the other workers of a
    multi-worker cluster (their own backups, so every worker can resume).
    """

    @functools.wraps(runner)
    def run(cfg, workdir: str, verbose="auto", **kwargs):
        cfg = tasks.checked(cfg)  # an unknown name fails here, before any data is loaded
        distribute.set_precision(cfg.runtime.mixed_precision)
        try:
            strategy = distribute.make_strategy(cfg.runtime.strategy)
            if not distribute.is_chief(strategy):
                workdir = os.path.join(workdir, "workers", f"worker-{strategy.cluster_resolver.task_id}")
            with strategy.scope():
                return runner(cfg, workdir, verbose, **kwargs)
        finally:
            distribute.set_precision(False)

    return run


def recipe_json(config: dict) -> str:
    """A config dict without its runtime section (which may change when a run resumes elsewhere), as JSON."""
    config = experiments.from_dict(config)  # configs written before the runtime section read back into it
    config = tasks.get_task(config.kind).check(config)  # a defense's settings complete, as a run records them
    return json.dumps({k: v for k, v in config_lib.to_dict(config).items() if k != "runtime"}, sort_keys=True)


@contextlib.contextmanager
def locked(workdir: str):
    """Holds ``WORKDIR/.lock`` while a run trains there; a second process on the folder gets a one-line
    ConfigError. The lock is the kernel's (``flock``): a killed process releases it."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"--workdir {workdir!r} is a file, not a folder: choose a folder for the run.")
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, ".lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise ConfigError(f"{workdir} is in use by another training run ({holder}): wait for it to finish or "
                              "choose another --workdir.") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_run(cfg, workdir: str) -> None:
    """Validates and checks ``cfg``, writes the run folder's config.json, and seeds every RNG (call under
    :func:`locked`).

    Refuses a folder holding a finished run (its metrics.json: nothing saved is
    overwritten) and resuming a killed run (backup/ present) with a different
    config than it started with (runtime fields aside).
    """
    cfg = tasks.checked(cfg)
    config_path = os.path.join(workdir, "config.json")
    if os.path.exists(os.path.join(workdir, "metrics.json")):
        raise ConfigError(f"{workdir} already holds a finished run (metrics.json): choose another --workdir or "
                          "delete that folder.")
    if os.path.isdir(os.path.join(workdir, "backup")) and os.path.exists(config_path):
        previous = config_lib.read_json(config_path)
        if recipe_json(previous) != recipe_json(json.loads(json.dumps(config_lib.to_dict(cfg)))):
            raise ConfigError(f"{workdir} holds a killed run started with a different config ({config_path}); "
                              "rerun it with --config=" + config_path + " to resume, or choose another --workdir.")
    config_lib.save_json(cfg, config_path)
    keras.utils.set_random_seed(cfg.seed)


def last_validation(history) -> dict:
    """The last epoch's validation figures of a ``fit`` history (``val_*`` keys), as floats."""
    return {key: float(values[-1]) for key, values in history.history.items() if key.startswith("val_")}


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
    # Its presence marks the run finished: written whole or not at all.
    config_lib.write_json_atomically(metrics, os.path.join(workdir, "metrics.json"), indent=2)
    log.info("Run %s: %s", workdir, metrics)
    return metrics


def skip_used_orders(train: tf.data.Dataset, epochs_done: int) -> None:
    """Advances a reshuffling dataset past the orders the killed process drew, so a resumed run sees the orders
    an unbroken run would (and its result, bit for bit: tests/test_faults.py).

    A shuffled split draws a new order each time an iterator is made, from a
    seed generator that restarts with the process; making an iterator reads
    no data. Keras' ``fit`` makes two per epoch (one to train on, and one made
    when the epoch's batches run out, which the next epoch replaces), so a run
    resuming after ``k`` epochs discards ``2 k``. Were Keras to make one, the
    resumed epochs would still see orders the killed epochs never used.
    """
    for _ in range(2 * epochs_done):
        iter(train)


def run_experiment(cfg, workdir: str, verbose="auto", data=None):
    """Trains any experiment config as its task says; returns (trainer, metrics) and writes the run folder.

    ``data``: your own labelled data instead of the config's dataset: ``(x, y)`` numpy arrays (float images
    [N, H, W, C] in [0, 1], integer labels), a ``tf.data.Dataset`` of (images, labels), a dict of the parts
    ``train`` / ``validation`` / ``test`` of either, or the :class:`~tfadv.data.own.OwnData` of an image folder
    (``tfadv.data.own.read_folder(dir, image_shape)``; a config whose ``data.image_dir`` names the folder needs
    no ``data``). A single set is split as ``tfadv-attack --train_dir`` splits a folder: a seeded 10% of each
    class for validation and 10% for test. The config is set for it by :func:`tfadv.tasks.use_own_data`
    (dataset "own", its image shape and classes; a generator's depth fitted to the image size); the model
    trains on the train part, ``fit`` validates on the validation part, metrics.json measures the test part
    and records each part's size, and ``WORKDIR/data_split.json`` which example went where::

        cfg = experiments.get_experiment("fashion_mnist_unet_l2")
        cfg.target = "my_classifier.keras"          # [0, 1] images of shape x.shape[1:] -> logits
        trainer, metrics = run_experiment(cfg, "runs/mine", data=(x, y))
        export.export_run("runs/mine", "mine", zoo_dir="runs/zoo", data=(x, y))   # measured on the same test part
    """
    own = None
    if data is not None:
        if not hasattr(cfg, "data"):
            raise ConfigError(f"{cfg.kind} experiments do not train on labelled data: data= is for classifier, "
                              "perturbation and defense configs.")
        own = own_lib.from_arrays(data, cfg.data.class_names if cfg.data.dataset == own_lib.OWN else None,
                                  holdout=cfg.data.holdout)
        cfg = tasks.use_own_data(cfg, own)
    return _run_experiment(cfg, workdir, verbose, own=own)


@placed
def _run_experiment(cfg, workdir: str, verbose="auto", own=None):
    """run_experiment's run, inside the config's strategy and precision.

    The backup is removed only after metrics.json is written: a run killed at
    any point resumes from its last finished epoch (after the last one, it
    only saves and measures again).
    """
    with locked(workdir):
        task = tasks.get_task(cfg.kind)
        start_run(cfg, workdir)
        data = task.data(cfg) if own is None else tasks.labelled_data(cfg, own)
        if data.own is not None:
            data.own.write_split(os.path.join(workdir, OWN_SPLIT_FILE))
        trainer = task.build(cfg, data)
        task.compile(trainer, cfg, make_optimizer(cfg.optimizer, data.steps, cfg.epochs))
        panels = ImageGridLogger(os.path.join(workdir, "logs"), task.panels(cfg, data),
                                 png_dir=os.path.join(workdir, "images"))
        own = task.callbacks(cfg, data)
        backup = RunBackup(os.path.join(workdir, "backup"), [c for c in own if isinstance(c, ResumableCallback)])
        skip_used_orders(data.train, backup.resume_epoch())
        callbacks = own + standard_callbacks(workdir, backup) + [panels]
        start = time.time()
        history = distribute.ready_to_fit(trainer).fit(data.train, validation_data=data.validation,
                                                       epochs=cfg.epochs, shuffle=False, callbacks=callbacks,
                                                       verbose=verbose)
        train_seconds = round(time.time() - start, 1)
        faults.point("run.trained")
        epochs_run, history.history = len(history.epoch), backup.history  # every epoch's logs, resumed or not
        task.save(trainer, cfg, workdir)
        faults.point("run.saved")
        metrics = {**task.measure(trainer, cfg, data, history), **data.split_facts(cfg), **last_validation(history),
                   "train_seconds": train_seconds, "epochs_run": epochs_run}
        if backup.resumed_from_epoch:  # train_seconds and epochs_run cover only epochs resumed_from_epoch + 1, ...
            metrics["resumed_from_epoch"] = backup.resumed_from_epoch  # this process's
        metrics = finish_run(workdir, metrics, trainer)
        faults.point("run.finished")
        backup.remove()
        return trainer, metrics



@contextlib.contextmanager
def _default_zoo(zoo_dir):
    """Training runs find their target in the default zoo (``$TFADV_ZOO_DIR``): point it at ``zoo_dir``."""
    previous = os.environ.get("TFADV_ZOO_DIR")
    os.environ["TFADV_ZOO_DIR"] = zoo_dir or zoo.default_zoo_dir()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TFADV_ZOO_DIR"]
        else:
            os.environ["TFADV_ZOO_DIR"] = previous


def fresh_generator(target: str, norm: str, eps: float, *, epochs: int = 2, steps_per_epoch: int | None = None,
                    idx_dir: str | None = None, zoo_dir: str | None = None, recipe: str = "fashion_mnist_unet_l2"):
    """A generator trained from scratch against the frozen zoo classifier ``target`` at (``norm``, ``eps``).

    The ``recipe`` (a thresholded U-Net) retargeted and rebudgeted, trained in a
    temporary run folder; returns its x -> x_hat model. The defense report's
    fresh-generator column: a defense that only beats its own co-trained
    generator shows it there.
    """
    cfg = experiments.get_experiment(recipe)
    cfg.target, cfg.norm, cfg.eps, cfg.epochs, cfg.steps_per_epoch = target, norm, eps, epochs, steps_per_epoch
    cfg.data.idx_dir = idx_dir
    with tempfile.TemporaryDirectory() as workdir, _default_zoo(zoo_dir):
        trainer, _ = run_experiment(cfg, workdir, verbose=0)
    return trainer.attacker
