"""tfadv's main job (``tfadv-attack``, ``tools/attack.py``): attack a classifier with a trained generator, beside
PGD, and keep the result.

    from tfadv.attack_job import run_attack
    result = run_attack("fashion_mnist_unet_l2", target="my_classifier.keras", quick=True)
    result.rows        # the report's table: clean, the generator (all images, first N), PGD (first N)
    result.report      # WORKDIR/report/report.md
    result.saved_model_dir   # the generator exported to the working zoo

Steps: train the generator against the target (Keras progress bar, TensorBoard logs; a finished run in the
run folder is reused, a killed one resumes), measure it on the full eval split beside the clean accuracy and
beside PGD at the same budget on the first ``pgd_examples`` images, write a report (Markdown + PNG figures),
export the generator to the working zoo ``zoo_dir``, and check the exported copy with plain
``tf.saved_model.load``. With ``train_dir`` all of it runs on your labelled images (tfadv.data.own): train part,
validation part, test part.

Why one job: a user with a classifier wants to know how fragile it is and to keep the attack that shows it. The
generator's number means little alone, so PGD at the same budget stands beside it on the same first images;
the exported copy is measured again with TensorFlow alone, so the zoo entry is known to be what was measured.
The target is checked against the input contract (tfadv.byo) on a grey batch and on the data measured before
anything trains, so a wrong pixel scale or class count fails in one line instead of after an epoch.

Importing this module is cheap (no TensorFlow): ``tools/attack.py`` reads its quick-run constants for ``--help``.
"""

import dataclasses
import os
import re
import time

import numpy as np

QUICK_STEPS = 200  # batches of 128 in the quick run's single epoch
# A quick run's generator has no BatchNorm: after 300 steps its moving statistics still lagged the weights, and
# the U-Net measured 30.8% adversarial accuracy in inference mode against 6.9% for the same run without BatchNorm.
QUICK_NO_BATCH_NORM = ("unet", "autoencoder")
QUICK_PGD_EXAMPLES = 200
FAILED_SHOWN = 4  # failed examples added to the attack figure, from anywhere in the eval split
COLUMNS = [("attack", "attack"), ("images", "images"), ("adv_accuracy", "adv. accuracy"),
           ("fooling_rate", "fooling rate"), ("l2_mean", "L2 mean"), ("l2_max", "L2 max"),
           ("linf_mean", "Linf mean"), ("linf_max", "Linf max"), ("images_per_s", "images/s")]


@dataclasses.dataclass
class AttackResult:
    """What one run of the job gives (every path absolute)."""
    config: object  # the config trained: options applied, set for the own data with train_dir
    name: str  # the generator's entry in the working zoo
    workdir: str  # the run folder
    zoo_dir: str  # the working zoo
    saved_model_dir: str  # the exported generator
    data_source: str  # what was measured on
    images: int  # how many images the generator and the clean accuracy were measured on
    clean_accuracy: float
    adv_accuracy: float  # the generator on all images, before export
    checked_adv_accuracy: float  # the same, recomputed from the export with plain tf.saved_model.load
    rows: list  # the report's table (COLUMNS): clean, generator on all, generator on the first N, PGD on them
    report: str  # report.md
    report_dir: str  # report.md and its PNG figures
    note: str | None  # a run shorter than its zoo entry's recipe: that entry's figure
    entry: dict  # the working zoo's registry entry
    run_metrics: dict  # the run's metrics.json
    seconds: float  # the whole job, training included


def named_config(name: str):
    """The named experiment's config, checked by its task (as ``--experiment=NAME`` resolves it)."""
    from tfadv import experiments, tasks

    return tasks.checked(experiments.get_experiment(name))


def attack_config(cfg, *, experiment: str | None = None, config_file: str | None = None, target: str | None = None,
                  pixel_scale: float = 1.0, strip_softmax: bool = False, quick: bool = False, explicit=(),
                  train_dir: str | None = None, image_dir: str | None = None):
    """The perturbation config ``cfg`` (or the named experiment's) with ``target`` and the quick settings applied.

    ``experiment`` / ``config_file``: where ``cfg`` came from (names and messages); ``explicit``: the config
    fields the caller set itself (``--set``, ``--epochs``), which the quick settings leave alone."""
    from tfadv import config as config_lib
    from tfadv import targets, tasks
    from tfadv.errors import ConfigError

    if isinstance(cfg, str):
        experiment, cfg = cfg, named_config(cfg)
    if cfg.kind != "perturbation":
        raise ConfigError(f"tfadv-attack trains perturbation experiments; {experiment or config_file!r} is a "
                          f"{cfg.kind} experiment. Try --experiment=fashion_mnist_unet_l2.")
    if train_dir is not None and image_dir:
        raise ConfigError("--train_dir trains and measures on the parts of your folder; --image_dir measures on "
                          "another: give one of them.")
    overrides = {}
    if target:
        own = target.endswith(".keras") or os.path.isdir(target)
        overrides["target"] = os.path.abspath(target) if own else target
    if pixel_scale != 1.0:
        if not is_file_target(overrides.get("target", cfg.target)):
            raise ConfigError(f"--pixel_scale wraps your own .keras or SavedModel --target; the zoo classifier "
                              f"{overrides.get('target', cfg.target)!r} already takes [0, 1] images.")
        overrides["target"] = targets.with_pixel_scale(overrides.get("target", cfg.target), pixel_scale)
    if strip_softmax:
        overrides["target"] = targets.with_options(overrides.get("target", cfg.target), strip_softmax=True)
    if quick:
        quick_settings = {"epochs": 1, "steps_per_epoch": QUICK_STEPS}
        if cfg.generator in QUICK_NO_BATCH_NORM:
            quick_settings["generator_kwargs.batch_norm"] = False
        overrides.update({k: v for k, v in quick_settings.items() if k not in set(explicit)})
    if overrides:
        cfg = tasks.checked(config_lib.override(cfg, overrides))
    return cfg


def entry_name(cfg, *, experiment: str | None = None, config_file: str | None = None, train_dir: str | None = None,
               quick: bool = False) -> str:
    """The experiment name (or the config file's), with the target's name when it is not the experiment's own."""
    from tfadv import experiments, targets

    base = experiment or (os.path.splitext(os.path.basename(config_file))[0] if config_file else "attack")
    own = experiments.get_experiment(experiment) if experiment else cfg
    if train_dir is not None and own.data.dataset != cfg.data.dataset:  # the folder replaces the dataset
        folder = os.path.basename(os.path.normpath(train_dir))
        base = f"{folder}_{base.removeprefix(own.data.dataset + '_')}"
    target_path, pixel_scale = targets.split_target(cfg.target)
    target_name = os.path.splitext(os.path.basename(target_path))[0]
    target_name += "" if pixel_scale == 1 else f"_x{pixel_scale:g}"
    target_name += "_logits" if targets.target_options(cfg.target)[1]["strip_softmax"] else ""
    name = base if cfg.target == own.target else f"{base}_vs_{target_name}"
    if quick:
        name += "_quick"
    elif cfg.epochs != own.epochs:
        name += f"_{cfg.epochs}ep"
    return re.sub(r"[^a-z0-9_.-]", "_", name.lower())


def is_file_target(target: str) -> bool:
    """A user's own classifier (a .keras file or a SavedModel directory), not a zoo entry."""
    from tfadv import targets

    path = targets.split_target(target)[0]
    return path.endswith(".keras") or os.path.isdir(path)


def target_label(target: str) -> str:
    """The target's file or entry name for titles, with its pixel scale when wrapped."""
    from tfadv import targets

    path, options = targets.target_options(target)
    return os.path.basename(path) + ("" if options["pixel_scale"] == 1 else f" (pixels x{options['pixel_scale']:g})") \
        + (" (softmax stripped)" if options["strip_softmax"] else "")


def check_target(cfg, classifier, images, labels, num_classes: int, data_name: str) -> None:
    """Checks the classifier against the input contract (tfadv.byo) on a probe batch of the data it is measured on."""
    from tfadv import byo

    # A zoo entry takes [0, 1] by construction (its serve refuses anything else): no 0-255 probe, whose refusal
    # TensorFlow would log as an alarming assertion line.
    labels = labels if is_file_target(cfg.target) else None
    byo.check_classifier(classifier, images, labels, num_classes, name=cfg.target, data_name=data_name)


def own_data(cfg, target_shape, train_dir: str, explicit=()):
    """``train_dir`` read at the target's input size (``target_shape``; ``data.image_shape`` wins): returns the
    config set to train on it (tfadv.tasks.use_own_data) and the data. An explicit ``generator_kwargs.depth``
    (in ``explicit``) keeps its depth; otherwise a U-Net's depth fits the image size."""
    from tfadv import tasks
    from tfadv.data import own
    from tfadv.errors import ConfigError

    shape = cfg.data.image_shape or target_shape
    if not shape or None in shape:
        raise ConfigError(f"Target {cfg.target!r} takes images of any size ({shape}): say which with "
                          "--set data.image_shape=[HEIGHT,WIDTH,CHANNELS] for --train_dir.")
    data = own.read_folder(train_dir, shape, holdout=cfg.data.holdout)
    fit_depth = False if "generator_kwargs.depth" in set(explicit) else None
    return tasks.use_own_data(cfg, data, fit_depth=fit_depth), data


def train(cfg, workdir: str, own=None, *, verbose="auto", log=print) -> dict:
    """Trains the generator (or reuses a finished run of the same config) on the config's data, or on ``own``
    (``train_dir``'s, already read); returns the run's metrics.json."""
    import json

    from tfadv import config as config_lib
    from tfadv import experiments, training

    def recipe(config) -> str:  # fields a new tfadv version added come with their defaults
        return training.recipe_json(json.loads(json.dumps(config_lib.to_dict(config))))

    metrics_path = os.path.join(workdir, "metrics.json")
    if os.path.isfile(metrics_path):
        if recipe(experiments.load_json(os.path.join(workdir, "config.json"))) == recipe(cfg):
            log(f"{workdir} holds a finished run of this config: reusing it (delete the folder to retrain).")
            with open(metrics_path) as f:
                return json.load(f)
    on = "" if own is None else f" on the {own.counts()['train']} train images of {own.location}"
    log(f"Training {cfg.generator} generator ({cfg.mode}, {cfg.norm} <= {cfg.eps}) against {cfg.target}{on}: "
        f"{cfg.epochs} epoch(s){f' of at most {cfg.steps_per_epoch} steps' if cfg.steps_per_epoch else ''}.")
    _, metrics = training.run_experiment(cfg, workdir, verbose=verbose, data=own)
    return metrics


def recipe_note(cfg, experiment: str | None) -> str | None:
    """For a run shorter than its zoo entry's recipe: the zoo entry's figure, so a weaker result is explained."""
    from tfadv import zoo
    from tfadv.errors import ZooError

    if not experiment:
        return None
    try:
        entry = zoo.entry(experiment)
    except ZooError:
        return None
    epochs, steps = entry["config"].get("epochs"), entry["config"].get("steps_per_epoch")
    shorter = cfg.epochs < epochs or (cfg.epochs == epochs and cfg.steps_per_epoch and not steps)
    if entry.get("target") != cfg.target or not shorter:
        return None
    capped = f" of {cfg.steps_per_epoch} steps" if cfg.steps_per_epoch else ""
    return (f"This run trained {cfg.epochs} epoch(s){capped}; the zoo entry {experiment} trained {epochs} full "
            f"epochs of the recipe and measures {entry['metrics']['adv_accuracy']:.2%} adversarial accuracy "
            f"(tfadv-evaluate --zoo_name={experiment}): fewer steps leave a weaker attack.")


def plain_check(saved_model_dir: str, target_fn, dataset, expected: float, num_examples: int) -> float:
    """Adversarial accuracy recomputed from the exported SavedModel with plain ``tf.saved_model.load``."""
    import tensorflow as tf

    from tfadv.errors import ZooError

    loaded = tf.saved_model.load(saved_model_dir)  # keep the object referenced while serving
    correct = sum(int(np.sum(np.argmax(target_fn(loaded.serve(x)), -1) == y.numpy())) for x, y in dataset)
    measured = correct / num_examples
    if abs(measured - expected) * num_examples > max(1.0, num_examples / 1000):
        raise ZooError(f"The exported generator at {saved_model_dir!r} gives adversarial accuracy {measured:.4f} "
                       f"with tf.saved_model.load, but {expected:.4f} before export.")
    return measured


def run_attack(cfg, *, experiment: str | None = None, config_file: str | None = None, target: str | None = None,
               pixel_scale: float = 1.0, strip_softmax: bool = False, quick: bool = False, explicit=(),
               train_dir: str | None = None, image_dir: str | None = None, workdir: str | None = None,
               zoo_dir: str = "runs/zoo", name: str | None = None, pgd_examples: int = 500, pgd_steps: int = 40,
               batch_size: int = 500, figure_examples: int = 8, verbose="auto", command: str | None = None,
               log=print) -> AttackResult:
    """Runs the job on perturbation config ``cfg`` (or the experiment of that name): train, measure beside PGD,
    report, export, check the export. Returns an :class:`AttackResult`.

    The config's options (``experiment``, ``config_file``, ``target``, ``pixel_scale``, ``strip_softmax``,
    ``quick``, ``explicit``, ``train_dir``, ``image_dir``) are :func:`attack_config`'s. ``image_dir``: measure
    (not train) on a folder of labelled images; ``train_dir``: train and measure on one (its parts).
    ``workdir``: the run folder (default ``runs/attack/NAME``); ``zoo_dir``: the working zoo the generator is
    exported to as ``name`` (default :func:`entry_name`); PGD-``pgd_steps`` runs on the first ``pgd_examples``
    images (at most :data:`QUICK_PGD_EXAMPLES` when ``quick``); ``verbose``: Keras ``fit``'s; ``command``: the
    command line the report quotes (default this process's); ``log``: where progress lines go, one per call.
    """
    import keras
    import tensorflow as tf

    from tfadv import data as data_lib
    from tfadv import evaluation, export, figures, report, runs, sweep, targets, zoo
    from tfadv.attacks import pgd
    from tfadv.data import own as own_data_lib
    from tfadv.data.images import labelled_image_folder
    from tfadv.errors import ConfigError
    from tfadv.training import OWN_SPLIT_FILE

    if isinstance(cfg, str):
        experiment, cfg = cfg, named_config(cfg)
    cfg = attack_config(cfg, experiment=experiment, config_file=config_file, target=target, pixel_scale=pixel_scale,
                        strip_softmax=strip_softmax, quick=quick, explicit=explicit, train_dir=train_dir,
                        image_dir=image_dir)
    zoo_dir = os.path.abspath(zoo_dir)
    pgd_examples = min(pgd_examples, QUICK_PGD_EXAMPLES) if quick else pgd_examples
    started = time.time()

    if is_file_target(cfg.target):
        loaded_target = targets.load_target(cfg.target)  # .keras or SavedModel, maybe wrapped by --pixel_scale
        if targets.target_options(cfg.target)[1]["strip_softmax"]:
            log(f"Removed the final softmax of {targets.split_target(cfg.target)[0]} (from the loaded copy, not the "
                "file): the attack and every figure use its logits.")
        target_fn = (evaluation.predictor(loaded_target) if isinstance(loaded_target, keras.Model)
                     else tf.function(loaded_target, reduce_retracing=True))
        target_shape = targets.image_shape(loaded_target)
    else:  # the zoo classifier goes into the working zoo too, so the exported attack's entry is complete there
        if cfg.target not in zoo.names():
            raise ConfigError(f"Target {cfg.target!r} is neither a .keras file, a SavedModel directory nor an "
                              f"entry of the zoo {zoo.default_zoo_dir()} ({', '.join(zoo.names())}).")
        if zoo.entry(cfg.target)["dataset"] != cfg.data.dataset and train_dir is None:
            raise ConfigError(f"Zoo classifier {cfg.target!r} is for {zoo.entry(cfg.target)['dataset']}, "
                              f"the experiment for {cfg.data.dataset}.")
        zoo.copy_entry(cfg.target, zoo.default_zoo_dir(), zoo_dir)
        served = zoo.load(cfg.target, zoo_dir)  # checksum verified; keep it referenced while serving
        target_fn = served.saved_model.serve  # traced inside PGD's tf.function: the plain endpoint
        target_shape = tuple(zoo.entry(cfg.target).get("input_shape") or ()) or None
    own = None
    if train_dir is not None:  # your images, read at the target's input size
        cfg, own = own_data(cfg, target_shape, train_dir, explicit)
    spec = cfg.data.spec()
    data_name = cfg.data.dataset if own is None else f"image folder {own.location} ({spec.num_classes} class folders)"
    # The contract on a grey batch first (runs, shape, logits: one per class), before the data measured is read.
    check_target(cfg, target_fn, tf.fill((2,) + tuple(spec.image_shape), 0.5), None, spec.num_classes, data_name)
    name = name or entry_name(cfg, experiment=experiment, config_file=config_file, train_dir=train_dir, quick=quick)
    workdir = os.path.abspath(workdir or os.path.join("runs", "attack", name))
    names = spec.class_names
    if own is not None:  # trained on the train part, chosen by the validation part, measured on the test part
        ds, _ = own_data_lib.load(own, cfg.data.eval_split, batch_size=batch_size)
        data_source = f"{cfg.data.eval_split} part of {own.describe()}"
        eval_label = f"{os.path.basename(own.location)} {cfg.data.eval_split}"
    elif image_dir:  # measured on the user's images; training stays on the experiment's dataset
        ds, names = labelled_image_folder(image_dir, spec.image_shape, batch_size)
        data_name = f"image folder {os.path.abspath(image_dir)}"
        data_source, eval_label = data_name, "image folder"
    else:
        ds, info = data_lib.load(cfg.data.dataset, cfg.data.eval_split, batch_size=batch_size,
                                 source=cfg.data.source, idx_dir=cfg.data.idx_dir,
                                 tfds_data_dir=cfg.data.tfds_data_dir)
        data_source = f"{cfg.data.dataset}[{cfg.data.eval_split}] from {info.source}:{info.location}"
        eval_label = f"{cfg.data.dataset} {cfg.data.eval_split}"
    probe_images, probe_labels = next(iter(ds))  # then the pixel range, and the classes of the data measured on
    check_target(cfg, target_fn, probe_images, probe_labels, len(names), data_name)
    if len(names) != spec.num_classes:  # image_dir
        raise ConfigError(f"{data_name} has {len(names)} classes, {cfg.data.dataset} (the generator's "
                          f"training data) {spec.num_classes}.")

    run_metrics = train(cfg, workdir, own, verbose=verbose, log=log)
    _, attacker = runs.load_run(workdir)
    generator_fn = evaluation.predictor(attacker)
    log(f"Measuring the generator on {data_source} ...")
    gen = sweep.Sweep(lambda x, y: generator_fn(x), target_fn, ds, keep_first=max(pgd_examples, figure_examples),
                      keep_failed=FAILED_SHOWN)
    n_all = len(gen.labels)
    pgd_n = min(pgd_examples, n_all)
    log(f"Running PGD-{pgd_steps} on the first {pgd_n} images ...")
    pgd_ds = ds.unbatch().take(pgd_n).batch(min(100, pgd_n))
    pgd_loss = "targeted" if cfg.target_class is not None else "untargeted"
    pgd_sweep = sweep.Sweep(lambda x, y: pgd(target_fn, x, y, eps=cfg.eps, norm=cfg.norm, steps=pgd_steps,
                                             loss=pgd_loss, target_class=cfg.target_class),
                            target_fn, pgd_ds, keep_first=figure_examples)

    gen_all, gen_sub, pgd_sub = gen.summary(), gen.summary(pgd_n), pgd_sweep.summary()
    clean = {"attack": "none (clean images)", "images": n_all, "adv_accuracy": gen_all["clean_accuracy"]}
    rows = [clean,
            {"attack": f"generator ({cfg.generator}, {cfg.mode})", **gen_all,
             "images_per_s": sweep.speed(gen.images_per_s)},
            {"attack": f"generator, first {pgd_n}", **gen_sub, "images_per_s": sweep.speed(gen.images_per_s)},
            {"attack": f"PGD-{pgd_steps}, first {pgd_n}", **pgd_sub,
             "images_per_s": sweep.speed(pgd_sweep.images_per_s)}]

    log(f"Exporting the generator to the working zoo {zoo_dir} as {name!r} ...")
    entry = export.export_run(workdir, name, zoo_dir=zoo_dir, overwrite=True, data=own)
    saved_model_dir = os.path.join(zoo_dir, entry["path"])
    checked = plain_check(saved_model_dir, target_fn, ds, gen_all["adv_accuracy"], n_all)

    budget = f"{cfg.norm.upper().replace('LINF', 'L-inf')} <= {cfg.eps:g}"
    figs = {
        "attack_generator": sweep.sweep_figure(gen, names, f"{name} vs {target_label(cfg.target)}, {budget}",
                                               figure_examples, failed=True, target_class=cfg.target_class),
        "attack_pgd": sweep.sweep_figure(pgd_sweep, names, f"PGD-{pgd_steps} vs {target_label(cfg.target)}, "
                                         f"{budget}", figure_examples, failed=False, target_class=cfg.target_class),
        "target_misclassified": figures.misclassified_figure(gen.x, gen.labels[: len(gen.x)], gen.clean[: len(gen.x)],
                                                             names, title=f"target's mistakes on clean images "
                                                             f"(first {len(gen.x)})"),
    }
    if cfg.mode == "universal":
        figs["universal_perturbation"] = figures.perturbation_figure(attacker.perturbation(training=False).numpy())
    # Where the predictions went, for every attack: a generator often sends almost every image to one class.
    for key, sweep_, label in (("confusion_on_x_hat", gen, f"the generator's x_hat, {len(gen.labels)} images"),
                               ("confusion_on_pgd", pgd_sweep, f"PGD-{pgd_steps}, first {len(pgd_sweep.labels)}")):
        confusion = tf.math.confusion_matrix(sweep_.labels, sweep_.adv, num_classes=len(names)).numpy()
        figs[key] = figures.confusion_figure(confusion, names,
                                             title=f"true class (rows) -> prediction on {label} (columns)")
    report_dir = os.path.join(workdir, "report")
    notes = [f"Budget judged against: {budget} per image (mode {cfg.mode}); measured norms are of x_hat - x.",
             f"The generator ran on all {n_all} images, PGD-{pgd_steps} (random start, step 2.5 eps / steps, "
             f"loss {pgd_loss}) on the first {pgd_n}; "
             "images/s excludes the first batch (tracing).",
             f"Training: {run_metrics.get('epochs_run')} epoch(s) in {run_metrics.get('train_seconds')} s; "
             f"run folder {workdir}.",
             f"Exported to {saved_model_dir} (entry {name!r} of the working zoo {zoo_dir}); "
             f"tf.saved_model.load of it gives adversarial accuracy {checked:.4f} "
             f"(before export: {gen_all['adv_accuracy']:.4f}; the export's own measurement: "
             f"{entry['metrics']['adv_accuracy']:.4f}).",
             f"Re-measure: `tfadv-evaluate --zoo_name={name} --zoo_dir={zoo_dir}`." if own is None else
             f"Re-measure: `tfadv-evaluate --workdir={workdir} --split={cfg.data.eval_split}` (reads the folder "
             "and its parts again)."]
    if own is not None:
        notes.insert(0, f"Data: {own.describe()}. The generator trained on the train part, validated on the "
                        f"validation part; every figure here is of the {cfg.data.eval_split} part. Which file went "
                        f"where: {os.path.join(workdir, OWN_SPLIT_FILE)}.")
    note = recipe_note(cfg, experiment)
    notes += [note] if note else []
    captions = {"attack_generator": "Per row: x, the perturbation amplified (grey = 0), x_hat; the true class and "
                "the prediction on x and x_hat. Red frame: the attack failed (still correct on x_hat).",
                "attack_pgd": "The same images under PGD at the same budget.",
                "target_misclassified": "Clean images the target already gets wrong (true class, prediction)."}
    path = report.write_report(report_dir, f"Attack on {target_label(cfg.target)}: {name}",
                               tables=[(f"Attacks at {budget} ({eval_label})", COLUMNS, rows)],
                               figures=figs, command=command or report.command_line(), data_source=data_source,
                               notes=notes, captions=captions)
    figures.log_to_tensorboard(os.path.join(workdir, "logs", "report"),
                               {k: v for k, v in figs.items() if v is not None})
    return AttackResult(config=cfg, name=name, workdir=workdir, zoo_dir=zoo_dir, saved_model_dir=saved_model_dir,
                        data_source=data_source, images=n_all, clean_accuracy=gen_all["clean_accuracy"],
                        adv_accuracy=gen_all["adv_accuracy"], checked_adv_accuracy=checked, rows=rows, report=path,
                        report_dir=report_dir, note=note, entry=entry, run_metrics=run_metrics,
                        seconds=time.time() - started)
