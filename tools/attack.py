"""Attacks a classifier with a trained generator, beside PGD, and keeps the result: tfadv's main job end to end.

    tfadv-attack                                        # U-Net, L2 2.4, vs the zoo's fashion_mnist_small_cnn
    tfadv-attack --quick                                # the same in ~3 minutes (1 short epoch)
    tfadv-attack --target=my_classifier.keras           # your own classifier ([0, 1] images in, logits out)
    tfadv-attack --target=my_saved_model_dir --pixel_scale=255 --image_dir=my_images   # SavedModel taking 0-255
    tfadv-attack --target=my_classifier.keras --train_dir=my_images --quick            # trained on your images
    tfadv-attack --experiment=fashion_mnist_universal_l2 --set epochs=1

Steps: train the generator against --target (Keras progress bar, TensorBoard
logs; a finished run in --workdir is reused, a killed one resumes), measure it
on the full eval split beside the clean accuracy and beside PGD at the same
budget on the first --pgd_examples images, write a report (Markdown + PNG
figures), export the generator to the working zoo --zoo_dir, and check the
exported copy with plain ``tf.saved_model.load``. With --train_dir all of it
runs on your labelled images (tfadv.data.own): train part, validation part,
test part.
"""

import os
import re
import time

import numpy as np
from absl import flags

from tfadv import cli

QUICK_STEPS = 200  # batches of 128 in the quick run's single epoch
# A quick run's generator has no BatchNorm: after 300 steps its moving statistics still lagged the weights, and
# the U-Net measured 30.8% adversarial accuracy in inference mode against 6.9% for the same run without BatchNorm.
QUICK_NO_BATCH_NORM = ("unet", "autoencoder")
QUICK_PGD_EXAMPLES = 200
FAILED_SHOWN = 4  # failed examples added to the attack figure, from anywhere in the eval split

cli.define_experiment_flags()
flags.adopt_module_key_flags(cli)
flags.FLAGS.set_default("experiment", "fashion_mnist_unet_l2")
flags.DEFINE_string("target", None, "Classifier to attack: a .keras file, a SavedModel directory or a zoo entry "
                    "name, taking [0, 1] images and returning logits (default: the experiment's target).")
flags.DEFINE_float("pixel_scale", 1.0, "Your --target expects pixels in [0, pixel_scale] (e.g. 255): it is wrapped to "
                   "multiply its [0, 1] input inside, so preprocessing lives in the model.", lower_bound=1e-6)
flags.DEFINE_bool("strip_softmax", False, "Your .keras --target ends in a softmax: attack its logits instead (the "
                  "final softmax is removed from the loaded copy, not from your file).")
flags.DEFINE_string("image_dir", None, "Measure (not train) on a folder of labelled images instead of the eval split: "
                    "one subfolder per class, sorted names = class indices; resized to the dataset's image size.")
flags.DEFINE_string("train_dir", None, "Train on your own labelled images instead of the experiment's dataset: a "
                    "folder with one subfolder per class (sorted names = class indices), of which a seeded 10% of "
                    "each class is held out for validation and 10% for test (--set data.holdout=0.2 for 20%), or "
                    "with train/, val/ and test/ subfolders of that form. Images are resized to --target's input; "
                    "the report, PGD and export use the test part. A U-Net's depth fits the image size.")
flags.DEFINE_string("zoo_dir", "runs/zoo", "Working zoo the generator is exported to (never the committed zoo/).")
flags.DEFINE_string("name", None, "Zoo entry name of the exported generator (default: from experiment and target).")
flags.DEFINE_integer("pgd_examples", 500, "PGD runs on the first N eval images (it is ~100x slower).", lower_bound=1)
flags.DEFINE_integer("pgd_steps", 40, "PGD steps (random start, step 2.5 * eps / steps).", lower_bound=1)
flags.DEFINE_integer("batch_size", 500, "Batch size for measuring and attacking.", lower_bound=1)
flags.DEFINE_integer("figure_examples", 8, "Examples shown in each attack figure.", lower_bound=1)
flags.DEFINE_bool("quick", False, f"A few-minute run: 1 epoch of at most {QUICK_STEPS} steps, a generator without "
                  f"BatchNorm, PGD on at most {QUICK_PGD_EXAMPLES} images (explicit --set / --epochs / "
                  "--steps_per_epoch win).")
FLAGS = flags.FLAGS


def resolve_config():
    """The experiment config with --target and the quick settings applied."""
    from tfadv import config as config_lib
    from tfadv import targets, tasks
    from tfadv.errors import ConfigError

    cfg = cli.resolve_experiment(FLAGS)
    if cfg.kind != "perturbation":
        raise ConfigError(f"tfadv-attack trains perturbation experiments; {FLAGS.experiment or FLAGS.config!r} is a "
                          f"{cfg.kind} experiment. Try --experiment=fashion_mnist_unet_l2.")
    if FLAGS.train_dir is not None and FLAGS.image_dir:
        raise ConfigError("--train_dir trains and measures on the parts of your folder; --image_dir measures on "
                          "another: give one of them.")
    overrides = {}
    if FLAGS.target:
        own = FLAGS.target.endswith(".keras") or os.path.isdir(FLAGS.target)
        overrides["target"] = os.path.abspath(FLAGS.target) if own else FLAGS.target
    if FLAGS.pixel_scale != 1.0:
        if not is_file_target(overrides.get("target", cfg.target)):
            raise ConfigError(f"--pixel_scale wraps your own .keras or SavedModel --target; the zoo classifier "
                              f"{overrides.get('target', cfg.target)!r} already takes [0, 1] images.")
        overrides["target"] = targets.with_pixel_scale(overrides.get("target", cfg.target), FLAGS.pixel_scale)
    if FLAGS.strip_softmax:
        overrides["target"] = targets.with_options(overrides.get("target", cfg.target), strip_softmax=True)
    if FLAGS.quick:
        chosen = {config_lib.parse_override(s)[0] for s in FLAGS.set}
        chosen |= {name for name in ("epochs", "steps_per_epoch") if name in FLAGS and FLAGS[name].value}
        quick = {"epochs": 1, "steps_per_epoch": QUICK_STEPS}
        if cfg.generator in QUICK_NO_BATCH_NORM:
            quick["generator_kwargs.batch_norm"] = False
        overrides.update({k: v for k, v in quick.items() if k not in chosen})
    if overrides:
        cfg = tasks.checked(config_lib.override(cfg, overrides))
    return cfg


def entry_name(cfg) -> str:
    """--name, else the experiment name, with the target's name when it is not the experiment's own."""
    if FLAGS.name:
        return FLAGS.name
    from tfadv import experiments

    base = FLAGS.experiment or os.path.splitext(os.path.basename(FLAGS.config))[0]
    own = experiments.get_experiment(FLAGS.experiment) if FLAGS.experiment else cfg
    if FLAGS.train_dir is not None and own.data.dataset != cfg.data.dataset:  # the folder replaces the dataset
        folder = os.path.basename(os.path.normpath(FLAGS.train_dir))
        base = f"{folder}_{base.removeprefix(own.data.dataset + '_')}"
    from tfadv import targets

    target_path, pixel_scale = targets.split_target(cfg.target)
    target_name = os.path.splitext(os.path.basename(target_path))[0]
    target_name += "" if pixel_scale == 1 else f"_x{pixel_scale:g}"
    target_name += "_logits" if targets.target_options(cfg.target)[1]["strip_softmax"] else ""
    name = base if cfg.target == own.target else f"{base}_vs_{target_name}"
    if FLAGS.quick:
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


def own_data(cfg, target_shape):
    """--train_dir read at the target's input size (``target_shape``; --set data.image_shape wins): returns the
    config set to train on it (tfadv.tasks.use_own_data) and the data. An explicit --set generator_kwargs.depth
    keeps its depth; otherwise a U-Net's depth fits the image size."""
    from tfadv import config as config_lib
    from tfadv import tasks
    from tfadv.data import own
    from tfadv.errors import ConfigError

    shape = cfg.data.image_shape or target_shape
    if not shape or None in shape:
        raise ConfigError(f"Target {cfg.target!r} takes images of any size ({shape}): say which with "
                          "--set data.image_shape=[HEIGHT,WIDTH,CHANNELS] for --train_dir.")
    data = own.read_folder(FLAGS.train_dir, shape, holdout=cfg.data.holdout)
    chosen = {config_lib.parse_override(s)[0] for s in FLAGS.set}
    return tasks.use_own_data(cfg, data, fit_depth=False if "generator_kwargs.depth" in chosen else None), data


def train(cfg, workdir: str, own=None) -> dict:
    """Trains the generator (or reuses a finished run of the same config) on the config's data, or on ``own``
    (--train_dir's, already read); returns the run's metrics.json."""
    import json

    from tfadv import config as config_lib
    from tfadv import experiments, training

    def recipe(config) -> str:  # fields a new tfadv version added come with their defaults
        return training.recipe_json(json.loads(json.dumps(config_lib.to_dict(config))))

    metrics_path = os.path.join(workdir, "metrics.json")
    if os.path.isfile(metrics_path):
        if recipe(experiments.load_json(os.path.join(workdir, "config.json"))) == recipe(cfg):
            print(f"{workdir} holds a finished run of this config: reusing it (delete the folder to retrain).")
            with open(metrics_path) as f:
                return json.load(f)
    on = "" if own is None else f" on the {own.counts()['train']} train images of {own.location}"
    print(f"Training {cfg.generator} generator ({cfg.mode}, {cfg.norm} <= {cfg.eps}) against {cfg.target}{on}: "
          f"{cfg.epochs} epoch(s){f' of at most {cfg.steps_per_epoch} steps' if cfg.steps_per_epoch else ''}.",
          flush=True)
    _, metrics = training.run_experiment(cfg, workdir, verbose=cli.fit_verbosity(), data=own)
    return metrics


def recipe_note(cfg) -> str | None:
    """For a run shorter than its zoo entry's recipe: the zoo entry's figure, so a weaker result is explained."""
    from tfadv import zoo
    from tfadv.errors import ZooError

    if not FLAGS.experiment:
        return None
    try:
        entry = zoo.entry(FLAGS.experiment)
    except ZooError:
        return None
    epochs, steps = entry["config"].get("epochs"), entry["config"].get("steps_per_epoch")
    shorter = cfg.epochs < epochs or (cfg.epochs == epochs and cfg.steps_per_epoch and not steps)
    if entry.get("target") != cfg.target or not shorter:
        return None
    capped = f" of {cfg.steps_per_epoch} steps" if cfg.steps_per_epoch else ""
    return (f"This run trained {cfg.epochs} epoch(s){capped}; the zoo entry {FLAGS.experiment} trained {epochs} full "
            f"epochs of the recipe and measures {entry['metrics']['adv_accuracy']:.2%} adversarial accuracy "
            f"(tfadv-evaluate --zoo_name={FLAGS.experiment}): fewer steps leave a weaker attack.")


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


COLUMNS = [("attack", "attack"), ("images", "images"), ("adv_accuracy", "adv. accuracy"),
           ("fooling_rate", "fooling rate"), ("l2_mean", "L2 mean"), ("l2_max", "L2 max"),
           ("linf_mean", "Linf mean"), ("linf_max", "Linf max"), ("images_per_s", "images/s")]


def main(argv):
    import keras
    import tensorflow as tf

    from tfadv import data as data_lib
    from tfadv import evaluation, export, figures, report, runs, sweep, targets, zoo
    from tfadv.attacks import pgd
    from tfadv.data import own as own_data_lib
    from tfadv.data.images import labelled_image_folder
    from tfadv.training import OWN_SPLIT_FILE

    if "list_experiments" in FLAGS and FLAGS.list_experiments:  # the shared experiment flags' own exits
        print(cli.experiment_list())
        return
    cfg = resolve_config()
    if "print_config" in FLAGS and FLAGS.print_config:
        print(cli.config_json(cfg))
        return
    zoo_dir = os.path.abspath(FLAGS.zoo_dir)
    pgd_examples = min(FLAGS.pgd_examples, QUICK_PGD_EXAMPLES) if FLAGS.quick else FLAGS.pgd_examples
    started = time.time()

    if is_file_target(cfg.target):
        loaded_target = targets.load_target(cfg.target)  # .keras or SavedModel, maybe wrapped by --pixel_scale
        if targets.target_options(cfg.target)[1]["strip_softmax"]:
            print(f"Removed the final softmax of {targets.split_target(cfg.target)[0]} (from the loaded copy, not the "
                  "file): the attack and every figure use its logits.", flush=True)
        target_fn = (evaluation.predictor(loaded_target) if isinstance(loaded_target, keras.Model)
                     else tf.function(loaded_target, reduce_retracing=True))
        target_shape = targets.image_shape(loaded_target)
    else:  # the zoo classifier goes into the working zoo too, so the exported attack's entry is complete there
        if cfg.target not in zoo.names():
            raise cli.ConfigError(f"Target {cfg.target!r} is neither a .keras file, a SavedModel directory nor an "
                                  f"entry of the zoo {zoo.default_zoo_dir()} ({', '.join(zoo.names())}).")
        if zoo.entry(cfg.target)["dataset"] != cfg.data.dataset and FLAGS.train_dir is None:
            raise cli.ConfigError(f"Zoo classifier {cfg.target!r} is for {zoo.entry(cfg.target)['dataset']}, "
                                  f"the experiment for {cfg.data.dataset}.")
        zoo.copy_entry(cfg.target, zoo.default_zoo_dir(), zoo_dir)
        served = zoo.load(cfg.target, zoo_dir)  # checksum verified; keep it referenced while serving
        target_fn = served.saved_model.serve  # traced inside PGD's tf.function: the plain endpoint
        target_shape = tuple(zoo.entry(cfg.target).get("input_shape") or ()) or None
    own = None
    if FLAGS.train_dir is not None:  # your images, read at the target's input size
        cfg, own = own_data(cfg, target_shape)
    spec = cfg.data.spec()
    data_name = cfg.data.dataset if own is None else f"image folder {own.location} ({spec.num_classes} class folders)"
    # The contract on a grey batch first (runs, shape, logits: one per class), before the data measured is read.
    check_target(cfg, target_fn, tf.fill((2,) + tuple(spec.image_shape), 0.5), None, spec.num_classes, data_name)
    name = entry_name(cfg)
    workdir = os.path.abspath(FLAGS.workdir or os.path.join("runs", "attack", name))
    names = spec.class_names
    if own is not None:  # trained on the train part, chosen by the validation part, measured on the test part
        ds, _ = own_data_lib.load(own, cfg.data.eval_split, batch_size=FLAGS.batch_size)
        data_source = f"{cfg.data.eval_split} part of {own.describe()}"
        eval_label = f"{os.path.basename(own.location)} {cfg.data.eval_split}"
    elif FLAGS.image_dir:  # measured on the user's images; training stays on the experiment's dataset
        ds, names = labelled_image_folder(FLAGS.image_dir, spec.image_shape, FLAGS.batch_size)
        data_name = f"image folder {os.path.abspath(FLAGS.image_dir)}"
        data_source, eval_label = data_name, "image folder"
    else:
        ds, info = data_lib.load(cfg.data.dataset, cfg.data.eval_split, batch_size=FLAGS.batch_size,
                                 source=cfg.data.source, idx_dir=cfg.data.idx_dir,
                                 tfds_data_dir=cfg.data.tfds_data_dir)
        data_source = f"{cfg.data.dataset}[{cfg.data.eval_split}] from {info.source}:{info.location}"
        eval_label = f"{cfg.data.dataset} {cfg.data.eval_split}"
    probe_images, probe_labels = next(iter(ds))  # then the pixel range, and the classes of the data measured on
    check_target(cfg, target_fn, probe_images, probe_labels, len(names), data_name)
    if len(names) != spec.num_classes:  # --image_dir
        raise cli.ConfigError(f"{data_name} has {len(names)} classes, {cfg.data.dataset} (the generator's "
                              f"training data) {spec.num_classes}.")

    run_metrics = train(cfg, workdir, own)
    _, attacker = runs.load_run(workdir)
    generator_fn = evaluation.predictor(attacker)
    print(f"Measuring the generator on {data_source} ...", flush=True)
    gen = sweep.Sweep(lambda x, y: generator_fn(x), target_fn, ds, keep_first=max(pgd_examples, FLAGS.figure_examples),
                keep_failed=FAILED_SHOWN)
    n_all = len(gen.labels)
    pgd_n = min(pgd_examples, n_all)
    print(f"Running PGD-{FLAGS.pgd_steps} on the first {pgd_n} images ...", flush=True)
    pgd_ds = ds.unbatch().take(pgd_n).batch(min(100, pgd_n))
    pgd_loss = "targeted" if cfg.target_class is not None else "untargeted"
    pgd_sweep = sweep.Sweep(lambda x, y: pgd(target_fn, x, y, eps=cfg.eps, norm=cfg.norm, steps=FLAGS.pgd_steps,
                                       loss=pgd_loss, target_class=cfg.target_class),
                      target_fn, pgd_ds, keep_first=FLAGS.figure_examples)

    gen_all, gen_sub, pgd_sub = gen.summary(), gen.summary(pgd_n), pgd_sweep.summary()
    clean = {"attack": "none (clean images)", "images": n_all, "adv_accuracy": gen_all["clean_accuracy"]}
    rows = [clean,
            {"attack": f"generator ({cfg.generator}, {cfg.mode})", **gen_all,
             "images_per_s": sweep.speed(gen.images_per_s)},
            {"attack": f"generator, first {pgd_n}", **gen_sub, "images_per_s": sweep.speed(gen.images_per_s)},
            {"attack": f"PGD-{FLAGS.pgd_steps}, first {pgd_n}", **pgd_sub,
             "images_per_s": sweep.speed(pgd_sweep.images_per_s)}]

    print(f"Exporting the generator to the working zoo {zoo_dir} as {name!r} ...", flush=True)
    entry = export.export_run(workdir, name, zoo_dir=zoo_dir, overwrite=True, data=own)
    saved_model_dir = os.path.join(zoo_dir, entry["path"])
    checked = plain_check(saved_model_dir, target_fn, ds, gen_all["adv_accuracy"], n_all)

    budget = f"{cfg.norm.upper().replace('LINF', 'L-inf')} <= {cfg.eps:g}"
    figs = {
        "attack_generator": sweep.sweep_figure(gen, names, f"{name} vs {target_label(cfg.target)}, {budget}",
                                           FLAGS.figure_examples, failed=True,
                                                 target_class=cfg.target_class),
        "attack_pgd": sweep.sweep_figure(pgd_sweep, names, f"PGD-{FLAGS.pgd_steps} vs "
                                     f"{target_label(cfg.target)}, {budget}", FLAGS.figure_examples,
                                           failed=False, target_class=cfg.target_class),
        "target_misclassified": figures.misclassified_figure(gen.x, gen.labels[: len(gen.x)], gen.clean[: len(gen.x)],
                                                             names, title=f"target's mistakes on clean images "
                                                             f"(first {len(gen.x)})"),
    }
    if cfg.mode == "universal":
        figs["universal_perturbation"] = figures.perturbation_figure(attacker.perturbation(training=False).numpy())
    # Where the predictions went, for every attack: a generator often sends almost every image to one class.
    for key, sweep_, label in (("confusion_on_x_hat", gen, f"the generator's x_hat, {len(gen.labels)} images"),
                               ("confusion_on_pgd", pgd_sweep, f"PGD-{FLAGS.pgd_steps}, first {len(pgd_sweep.labels)}")):
        confusion = tf.math.confusion_matrix(sweep_.labels, sweep_.adv, num_classes=len(names)).numpy()
        figs[key] = figures.confusion_figure(confusion, names,
                                             title=f"true class (rows) -> prediction on {label} (columns)")
    report_dir = os.path.join(workdir, "report")
    notes = [f"Budget judged against: {budget} per image (mode {cfg.mode}); measured norms are of x_hat - x.",
             f"The generator ran on all {n_all} images, PGD-{FLAGS.pgd_steps} (random start, step 2.5 eps / steps, "
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
    note = recipe_note(cfg)
    notes += [note] if note else []
    captions = {"attack_generator": "Per row: x, the perturbation amplified (grey = 0), x_hat; the true class and "
                "the prediction on x and x_hat. Red frame: the attack failed (still correct on x_hat).",
                "attack_pgd": "The same images under PGD at the same budget.",
                "target_misclassified": "Clean images the target already gets wrong (true class, prediction)."}
    path = report.write_report(report_dir, f"Attack on {target_label(cfg.target)}: {name}",
                               tables=[(f"Attacks at {budget} ({eval_label})",
                                        COLUMNS, rows)],
                               figures=figs, command=report.command_line(), data_source=data_source, notes=notes,
                               captions=captions)
    figures.log_to_tensorboard(os.path.join(workdir, "logs", "report"),
                               {k: v for k, v in figs.items() if v is not None})

    print()
    print(f"target {cfg.target}: clean accuracy {gen_all['clean_accuracy']:.4f} on {n_all} images ({data_source})")
    print(report.markdown_table(COLUMNS, rows[1:]))
    if note:
        print(f"\n{note}")
    print(f"\nexported: {saved_model_dir}; tf.saved_model.load check: adv accuracy {checked:.4f} "
          f"(before export {gen_all['adv_accuracy']:.4f})")
    print(f"report:      {path}")
    print(f"figures:     {report_dir}/*.png (training grids: {os.path.join(workdir, 'images')})")
    print(f"TensorBoard: tensorboard --logdir {os.path.join(workdir, 'logs')}")
    print(f"total time:  {time.time() - started:.0f} s")


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
