"""Perturbation generators against PGD, one table from one run (``tools/benchmark_perturbation.py``).

    rows = (entry_row(name, registry[name], target, classifier, ds, pgd_ds, pgd_steps=40) for name in names)
    for line in markdown.table_lines(header(40), rows):   # each row printed as soon as it is measured
        print(line)

Per zoo generator: adversarial accuracy, fooling rate, mean L2 / L-inf and mean SSIM(x, x_hat) of its SavedModel;
PGD at the same budget (the entry's eps, or its measured mean L2 for the unbounded joint models) on ``pgd_ds``;
both attacks' images/s and their ratio; PGD at equal time (:func:`equal_time_steps`) on PGD's images beside the
generator's accuracy there; and the training step time of ``fit`` against a bare ``tf.function(jit_compile=True)``
of the same ``train_step`` (:func:`step_times`). :func:`comparison_figure` draws the entries side by side.
"""

import time

import numpy as np
import tensorflow as tf

from tfadv import figures
from tfadv.timing import timed_calls


def header(pgd_steps: int) -> tuple:
    """The table's columns."""
    return ("entry", "generator", "mode", "loss", "budget", "gen adv acc", "gen fool", "gen L2", "gen Linf",
            "gen SSIM", f"PGD-{pgd_steps} adv acc", "PGD fool", "PGD L2", "PGD SSIM", "gen img/s",
            "PGD img/s", "speed ratio", "gen adv acc (PGD imgs)", "PGD steps in gen time",
            "equal-time PGD steps", "equal-time PGD adv acc", "fit s/step", "bare XLA s/step")


def equal_time_steps(gen_speed: float, pgd_speed: float, pgd_steps: int) -> tuple[float, int]:
    """(PGD steps that fit in the generator's time per image, the steps to run: that, floored, and at least 1).

    One PGD step costs 1 / (pgd_speed * pgd_steps) seconds per image (PGD-``pgd_steps``
    ran at ``pgd_speed`` images/s); the generator takes 1 / gen_speed.
    """
    if not (gen_speed > 0 and pgd_speed > 0):
        raise ValueError(f"speeds must be > 0. Received: gen {gen_speed!r}, PGD {pgd_speed!r}")
    fit = pgd_steps * pgd_speed / gen_speed
    return fit, max(1, int(fit))


def ssim(x, x_hat):
    """Per-image SSIM of [0, 1] images (tf.image.ssim, its default 11x11 Gaussian window)."""
    return tf.image.ssim(tf.cast(x, tf.float32), tf.cast(x_hat, tf.float32), max_val=1.0)


def _accuracy(classifier, x, labels):
    pred = tf.argmax(classifier.serve(x), -1, output_type=tf.int32)
    return float(tf.reduce_mean(tf.cast(pred == labels, tf.float32)))


def _images_per_s(fn, ds):
    """fn(images, labels) over every batch of ``ds``, timed: (outputs, images/s)."""
    batches = list(ds)
    seconds, outputs = timed_calls(fn, batches)
    return outputs, sum(int(labels.shape[0]) for _, labels in batches) / (seconds * len(batches))


def step_times(entry_config: dict, classifier, ds, steps: int, time_xla: bool = True):
    """(fit seconds/step, bare jit train_step seconds/step) of a fresh trainer of a perturbation entry's config,
    on ``steps`` batches of its batch size; the bare figure is "not timed" without ``time_xla`` and "failed: ..."
    when XLA cannot compile a piece."""
    import keras

    from tfadv import experiments
    from tfadv.data import get_spec
    from tfadv.tasks.perturbation import PerturbationTask, build_perturbation_trainer

    cfg = experiments.from_dict(entry_config)
    batches = ds.unbatch().batch(cfg.data.batch_size, drop_remainder=True).take(steps + 1).cache()

    def compiled():
        trainer = build_perturbation_trainer(cfg, classifier, get_spec(cfg.data.dataset).image_shape)
        PerturbationTask().compile(trainer, cfg, keras.optimizers.Adam(1e-3))  # GAN: its d_optimizer too
        return trainer

    trainer = compiled()
    trainer.fit(batches.take(1), verbose=0)
    start = time.perf_counter()  # one fit over the steps: fit's own loop is what is timed
    trainer.fit(batches.skip(1), verbose=0)
    fit_time = (time.perf_counter() - start) / steps
    if not time_xla:
        return fit_time, "not timed"
    bare_trainer = compiled()
    bare_trainer.optimizer.build(bare_trainer.attacker.trainable_variables)
    if cfg.gan:
        bare_trainer.d_optimizer.build(bare_trainer.discriminator.trainable_variables)
    step = tf.function(bare_trainer.train_step, jit_compile=True)
    try:
        bare_time, _ = timed_calls(step, [(batch,) for batch in batches.skip(1)])
    except Exception as e:  # noqa: BLE001 - report, not crash, when XLA cannot compile a piece
        bare_time = f"failed: {type(e).__name__}"
    return fit_time, bare_time


def _cell(value) -> str:
    return (f"{value:.4f}" if isinstance(value, float) and value < 10 else f"{value:.0f}" if isinstance(value, float)
            else str(value))


def entry_row(name: str, entry: dict, target: str, classifier, ds, pgd_ds, *, pgd_steps: int,
              step_timing_steps: int | None = None, time_xla: bool = True) -> list[str]:
    """The table's row of zoo perturbation entry ``name`` (its registry ``entry``) against zoo classifier
    ``target`` (``classifier``: its loaded SavedModel): the generator on ``ds``, PGD on ``pgd_ds``; training steps
    (against the target's Keras form) timed over ``step_timing_steps`` steps (None: not timed)."""
    from tfadv import evaluation, zoo
    from tfadv.attacks import pgd

    attack = zoo.load(name)
    gen = evaluation.measure_attack(attack.serve, classifier.serve, ds)
    gen_ssim = float(tf.reduce_mean(tf.concat([ssim(x, attack.serve(x)) for x, _ in ds], 0)))
    _, gen_speed = _images_per_s(lambda x, y: attack.serve(x), ds)
    budget = entry.get("budget") or {"norm": "l2", "eps": round(gen["l2_mean"], 2)}
    x_advs, pgd_speed = _images_per_s(lambda x, y: pgd(classifier.serve, x, y, eps=budget["eps"],
                                                       norm=budget["norm"], steps=pgd_steps), pgd_ds)
    labels = tf.concat([y for _, y in pgd_ds], 0)
    x_adv = tf.concat(x_advs, 0)
    x_clean = tf.concat([x for x, _ in pgd_ds], 0)
    pgd_pred = tf.concat([tf.argmax(classifier.serve(b), -1, output_type=tf.int32)
                          for b in tf.split(x_adv, max(1, len(x_advs)))], 0)
    clean_pred = tf.concat([tf.argmax(classifier.serve(b), -1, output_type=tf.int32)
                            for b in tf.split(x_clean, max(1, len(x_advs)))], 0)
    pgd_acc = float(tf.reduce_mean(tf.cast(pgd_pred == labels, tf.float32)))
    pgd_fool = float(tf.reduce_mean(tf.cast(pgd_pred != clean_pred, tf.float32)))
    pgd_l2 = float(tf.reduce_mean(tf.norm(tf.reshape(x_adv - x_clean, (len(labels), -1)), axis=1)))
    pgd_ssim = float(tf.reduce_mean(ssim(x_clean, x_adv)))
    gen_same = _accuracy(classifier, tf.concat([attack.serve(x) for x, _ in pgd_ds], 0), labels)
    fit_steps, eq_steps = equal_time_steps(gen_speed, pgd_speed, pgd_steps)
    eq_adv = tf.concat([pgd(classifier.serve, x, y, eps=budget["eps"], norm=budget["norm"], steps=eq_steps)
                        for x, y in pgd_ds], 0)
    eq_acc = _accuracy(classifier, eq_adv, labels)
    fit_t, bare_t = (step_times(entry["config"], zoo.keras_layer(target), ds, step_timing_steps, time_xla)
                     if step_timing_steps else ("not timed", "not timed"))
    row = (name, entry["config"]["generator"], entry["config"]["mode"], entry["config"]["loss"],
           f"{budget['norm']} {budget['eps']:.3g}", gen["adv_accuracy"], gen["fooling_rate"],
           gen["l2_mean"], gen["linf_mean"], gen_ssim, pgd_acc, pgd_fool, pgd_l2, pgd_ssim, gen_speed,
           pgd_speed, gen_speed / pgd_speed, gen_same, fit_steps,
           f"{eq_steps}" + (" (floor)" if fit_steps < 1 else ""), eq_acc, fit_t, bare_t)
    return [_cell(value) for value in row]


def comparison_figure(x, labels, columns, classifier, class_names=()):
    """Rows: the same images; columns: x, then x_hat of each ``(name, attack serve)`` in ``columns``.

    Each tile is captioned with its column, the classifier's prediction (red
    when wrong) and, for x_hat, L2 / L-inf of x_hat - x and SSIM(x, x_hat).
    """
    tiles, captions, colors = [], [], []
    outputs = [("x", x)] + [(name, serve(x)) for name, serve in columns]
    preds = {name: tf.argmax(classifier.serve(images), -1, output_type=tf.int32).numpy() for name, images in outputs}
    similarity = {name: ssim(x, images).numpy() for name, images in outputs}
    delta = {name: tf.reshape(images - x, (len(x), -1)).numpy() for name, images in outputs}
    for i in range(len(x)):
        for name, images in outputs:
            tiles.append(images[i].numpy())
            pred = figures.class_name(class_names, int(preds[name][i]))
            if name == "x":
                caption = ["x", f"true {figures.class_name(class_names, int(labels[i]))}", f"pred {pred}", ""]
            else:
                caption = [name, f"pred {pred}", f"L2 {np.linalg.norm(delta[name][i]):.2f} "
                                                 f"Linf {np.abs(delta[name][i]).max():.2f}",
                           f"SSIM {similarity[name][i]:.2f}"]
            captions.append(caption)
            wrong = int(preds[name][i]) != int(labels[i])
            colors.append([figures.BLACK, figures.BLACK, figures.RED if wrong else figures.GREEN, figures.BLACK]
                          if name == "x" else
                          [figures.BLACK, figures.RED if wrong else figures.GREEN, figures.BLACK, figures.BLACK])
    return figures.labelled_grid(np.stack(tiles), captions, cols=len(outputs), colors=colors,
                                 title="same test images: x | x_hat per generator (pred red: fooled)")


def entries_figure(entries, classifier, ds, examples: int, dataset: str):
    """:func:`comparison_figure` of zoo ``entries`` on the first ``examples`` images of ``ds`` (of ``dataset``),
    each column named without the dataset prefix."""
    from tfadv import zoo
    from tfadv.data import get_spec

    x, labels = next(iter(ds.unbatch().take(examples).batch(examples)))
    loaded = [(n, zoo.load(n)) for n in entries]  # kept alive while their serve functions run
    return comparison_figure(tf.cast(x, tf.float32), labels.numpy(),
                             [(n.removeprefix(dataset + "_"), m.serve) for n, m in loaded], classifier,
                             get_spec(dataset).class_names)
