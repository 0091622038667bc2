"""Benchmark: perturbation generators vs PGD, one table from one run (prints its figures; not a test).

    python tools/benchmark_perturbation.py [--target=fashion_mnist_small_cnn] [--pgd_examples=10000]

For every perturbation entry of the zoo that attacks ``--target``: adversarial
accuracy, fooling rate, mean L2 / L-inf and mean SSIM(x, x_hat) of its
SavedModel on the test split (SSIM: how close the images look to the
originals, 1 = identical); PGD-40 at the same budget (the entry's eps, or its
measured mean L2 for the unbounded joint models) side by side; attack
throughput (images/s) of generator and PGD and their ratio.

Success at equal time: PGD with as many steps as fit in the generator's time
per image (PGD-40's time / 40 per step, measured in the same run), on the same
images as PGD-40, beside the generator's adversarial accuracy on those images.
When not even one step fits, the column runs the floor, PGD-1 (one step of
2.5 eps from a random start: FGSM/FGM with random start), and marks its step
count "1 (floor)"; "PGD steps in gen time" gives the fraction.

Then the training step time of ``fit`` against a bare
``tf.function(jit_compile=True)`` of the same train_step.

``--figure=PATH`` also writes a PNG of the first ``--figure_examples`` images
of the split side by side: x | x_hat of each of ``--figure_entries`` (default:
the benchmarked entries), each captioned with the prediction, L2 and SSIM
(``--notable`` writes only the figure).
"""

import time

from absl import flags

from tfadv import cli

flags.DEFINE_string("target", "fashion_mnist_small_cnn", "Zoo classifier under attack.")
flags.DEFINE_list("entries", [], "Perturbation zoo entries (default: every entry whose target is --target).")
flags.DEFINE_string("split", "test", "Evaluation split.")
flags.DEFINE_integer("pgd_steps", 40, "PGD steps.", lower_bound=1)
flags.DEFINE_integer("pgd_examples", 10000, "Test examples PGD runs on (it is the slow column).", lower_bound=1)
flags.DEFINE_integer("gen_examples", 0, "Test examples the generators are measured on (0: the whole split).",
                     lower_bound=0)
flags.DEFINE_integer("batch_size", 500, "Batch size for evaluation and attacks.", lower_bound=1)
flags.DEFINE_integer("step_timing_steps", 10, "Steps timed for fit vs bare XLA train_step.", lower_bound=2)
flags.DEFINE_bool("time_steps", True, "Time training steps (fit and bare XLA); --notime_steps leaves both out.")
flags.DEFINE_bool("time_xla", True, "Also time a bare tf.function(jit_compile=True) train_step (slow to run on CPU).")
flags.DEFINE_string("figure", None, "Also write a PNG: x | x_hat of each --figure_entries, same images per row.")
flags.DEFINE_list("figure_entries", [], "Entries of the figure, in column order (default: the benchmarked entries).")
flags.DEFINE_integer("figure_examples", 8, "Images (rows) of the figure.", lower_bound=1)
flags.DEFINE_bool("table", True, "Print the benchmark table (--notable: only write --figure).")
FLAGS = flags.FLAGS


def _timed(fn, ds):
    """Runs fn over ds (after one warm-up batch); returns (outputs, images/s)."""
    batches = list(ds)
    fn(batches[0][0], batches[0][1])
    start, outputs = time.perf_counter(), []
    for images, labels in batches:
        outputs.append(fn(images, labels))
    seconds = time.perf_counter() - start
    return outputs, sum(int(b[1].shape[0]) for b in batches) / seconds


def _step_times(entry_config, classifier, ds, steps):
    """(fit seconds/step, bare jit train_step seconds/step) for a fresh trainer of this config."""
    import keras
    import tensorflow as tf

    from tfadv import experiments
    from tfadv.tasks.perturbation import PerturbationTask, build_perturbation_trainer

    cfg = experiments.from_dict(entry_config)
    batches = ds.unbatch().batch(cfg.data.batch_size, drop_remainder=True).take(steps + 1).cache()

    def compiled():
        trainer = build_perturbation_trainer(cfg, classifier, cfg_shape(cfg))
        PerturbationTask().compile(trainer, cfg, keras.optimizers.Adam(1e-3))  # GAN: its d_optimizer too
        return trainer

    trainer = compiled()
    trainer.fit(batches.take(1), verbose=0)
    start = time.perf_counter()
    trainer.fit(batches.skip(1), verbose=0)
    fit_time = (time.perf_counter() - start) / steps
    if not FLAGS.time_xla:
        return fit_time, "not timed"
    bare_trainer = compiled()
    bare_trainer.optimizer.build(bare_trainer.attacker.trainable_variables)
    if cfg.gan:
        bare_trainer.d_optimizer.build(bare_trainer.discriminator.trainable_variables)
    step = tf.function(bare_trainer.train_step, jit_compile=True)
    try:
        first = next(iter(batches))
        step(first)
        start = time.perf_counter()
        for batch in batches.skip(1):
            step(batch)
        bare_time = (time.perf_counter() - start) / steps
    except Exception as e:  # noqa: BLE001 - report, not crash, when XLA cannot compile a piece
        bare_time = f"failed: {type(e).__name__}"
    return fit_time, bare_time


def cfg_shape(cfg):
    from tfadv.data import get_spec

    return get_spec(cfg.data.dataset).image_shape


def equal_time_steps(gen_speed: float, pgd_speed: float, pgd_steps: int) -> tuple[float, int]:
    """(PGD steps that fit in the generator's time per image, the steps to run: that, floored, and at least 1).

    One PGD step costs 1 / (pgd_speed * pgd_steps) seconds per image (PGD-``pgd_steps``
    ran at ``pgd_speed`` images/s); the generator takes 1 / gen_speed.
    """
    if not (gen_speed > 0 and pgd_speed > 0):
        raise ValueError(f"speeds must be > 0. Received: gen {gen_speed!r}, PGD {pgd_speed!r}")
    fit = pgd_steps * pgd_speed / gen_speed
    return fit, max(1, int(fit))


def _ssim(x, x_hat):
    """Per-image SSIM of [0, 1] images (tf.image.ssim, its default 11x11 Gaussian window)."""
    import tensorflow as tf

    return tf.image.ssim(tf.cast(x, tf.float32), tf.cast(x_hat, tf.float32), max_val=1.0)


def _accuracy(classifier, x, labels):
    import tensorflow as tf

    pred = tf.argmax(classifier.serve(x), -1, output_type=tf.int32)
    return float(tf.reduce_mean(tf.cast(pred == labels, tf.float32)))


def comparison_figure(x, labels, columns, classifier, class_names=()):
    """Rows: the same images; columns: x, then x_hat of each ``(name, attack serve)`` in ``columns``.

    Each tile is captioned with its column, the classifier's prediction (red
    when wrong) and, for x_hat, L2 / L-inf of x_hat - x and SSIM(x, x_hat).
    """
    import numpy as np
    import tensorflow as tf

    from tfadv import figures

    tiles, captions, colors = [], [], []
    outputs = [("x", x)] + [(name, serve(x)) for name, serve in columns]
    preds = {name: tf.argmax(classifier.serve(images), -1, output_type=tf.int32).numpy() for name, images in outputs}
    ssim = {name: _ssim(x, images).numpy() for name, images in outputs}
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
                           f"SSIM {ssim[name][i]:.2f}"]
            captions.append(caption)
            wrong = int(preds[name][i]) != int(labels[i])
            colors.append([figures.BLACK, figures.BLACK, figures.RED if wrong else figures.GREEN, figures.BLACK]
                          if name == "x" else
                          [figures.BLACK, figures.RED if wrong else figures.GREEN, figures.BLACK, figures.BLACK])
    return figures.labelled_grid(np.stack(tiles), captions, cols=len(outputs), colors=colors,
                                 title="same test images: x | x_hat per generator (pred red: fooled)")


def _write_figure(registry, names, classifier, ds):
    import tensorflow as tf

    from tfadv import zoo
    from tfadv.data import get_spec
    from tfadv.data.images import write_png

    entries = FLAGS.figure_entries or names
    unknown = [n for n in entries if n not in registry]
    if unknown:
        raise SystemExit(f"--figure_entries: not in the zoo: {', '.join(unknown)}")
    batch = ds.unbatch().take(FLAGS.figure_examples).batch(FLAGS.figure_examples)
    x, labels = next(iter(batch))
    loaded = [(n, zoo.load(n)) for n in entries]  # kept alive while their serve functions run
    short = lambda n: n.removeprefix(registry[FLAGS.target]["dataset"] + "_")  # noqa: E731
    image = comparison_figure(tf.cast(x, tf.float32), labels.numpy(),
                              [(short(n), m.serve) for n, m in loaded], classifier,
                              get_spec(registry[FLAGS.target]["dataset"]).class_names)
    print(f"figure: {write_png(FLAGS.figure, image)} (first {FLAGS.figure_examples} {FLAGS.split} images; "
          f"columns x, {', '.join(entries)})", flush=True)


def main(argv):
    import tensorflow as tf

    from tfadv import data as data_lib
    from tfadv import evaluation, zoo
    from tfadv.attacks import pgd

    registry = zoo.read_registry()
    names = FLAGS.entries or sorted(n for n, e in registry.items()
                                    if e["kind"] == "perturbation" and e.get("target") == FLAGS.target)
    if not names:
        raise SystemExit(f"No perturbation entries attack {FLAGS.target!r} in the zoo.")
    classifier = zoo.load(FLAGS.target)
    dataset = registry[FLAGS.target]["dataset"]
    ds, info = data_lib.load(dataset, FLAGS.split, batch_size=FLAGS.batch_size)
    if FLAGS.gen_examples:
        ds = ds.unbatch().take(FLAGS.gen_examples).batch(FLAGS.batch_size)
    pgd_ds = ds.unbatch().take(FLAGS.pgd_examples).batch(FLAGS.batch_size)
    if FLAGS.figure:
        _write_figure(registry, names, classifier, ds)
    if not FLAGS.table:
        return
    clean = evaluation.evaluate_classifier(classifier.serve, ds)
    print(f"target {FLAGS.target}: clean accuracy {clean['accuracy']:.4f} on {clean['num_examples']} "
          f"{dataset}[{FLAGS.split}] images (source {info.source}:{info.location})\n")

    header = ("entry", "generator", "mode", "loss", "budget", "gen adv acc", "gen fool", "gen L2", "gen Linf",
              "gen SSIM", f"PGD-{FLAGS.pgd_steps} adv acc", "PGD fool", "PGD L2", "PGD SSIM", "gen img/s",
              "PGD img/s", "speed ratio", "gen adv acc (PGD imgs)", "PGD steps in gen time",
              "equal-time PGD steps", "equal-time PGD adv acc", "fit s/step", "bare XLA s/step")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    for name in names:
        entry = registry[name]
        attack = zoo.load(name)
        gen = evaluation.measure_attack(attack.serve, classifier.serve, ds)
        gen_ssim = float(tf.reduce_mean(tf.concat([_ssim(x, attack.serve(x)) for x, _ in ds], 0)))
        _, gen_speed = _timed(lambda x, y: attack.serve(x), ds)
        budget = entry.get("budget") or {"norm": "l2", "eps": round(gen["l2_mean"], 2)}
        x_advs, pgd_speed = _timed(lambda x, y: pgd(classifier.serve, x, y, eps=budget["eps"], norm=budget["norm"],
                                                    steps=FLAGS.pgd_steps), pgd_ds)
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
        pgd_ssim = float(tf.reduce_mean(_ssim(x_clean, x_adv)))
        gen_same = _accuracy(classifier, tf.concat([attack.serve(x) for x, _ in pgd_ds], 0), labels)
        fit_steps, eq_steps = equal_time_steps(gen_speed, pgd_speed, FLAGS.pgd_steps)
        eq_adv = tf.concat([pgd(classifier.serve, x, y, eps=budget["eps"], norm=budget["norm"], steps=eq_steps)
                            for x, y in pgd_ds], 0)
        eq_acc = _accuracy(classifier, eq_adv, labels)
        fit_t, bare_t = (_step_times(entry["config"], zoo.keras_layer(FLAGS.target), ds, FLAGS.step_timing_steps)
                         if FLAGS.time_steps else ("not timed", "not timed"))
        row = (name, entry["config"]["generator"], entry["config"]["mode"], entry["config"]["loss"],
               f"{budget['norm']} {budget['eps']:.3g}", gen["adv_accuracy"], gen["fooling_rate"],
               gen["l2_mean"], gen["linf_mean"], gen_ssim, pgd_acc, pgd_fool, pgd_l2, pgd_ssim, gen_speed,
               pgd_speed, gen_speed / pgd_speed, gen_same, fit_steps,
               f"{eq_steps}" + (" (floor)" if fit_steps < 1 else ""), eq_acc, fit_t, bare_t)
        cells = [f"{v:.4f}" if isinstance(v, float) and v < 10 else f"{v:.0f}" if isinstance(v, float) else str(v)
                 for v in row]
        print("| " + " | ".join(cells) + " |", flush=True)
    n_pgd = min(FLAGS.pgd_examples, clean["num_examples"])
    print(f"\nPGD ran on the first {n_pgd} {FLAGS.split} images; generators on all {clean['num_examples']} (and "
          f"'gen adv acc (PGD imgs)' on PGD's {n_pgd}). Equal time: PGD-k with k = the PGD steps that fit in the "
          f"generator's time per image (PGD-{FLAGS.pgd_steps}'s time / {FLAGS.pgd_steps} per step), at least 1; "
          "'(floor)': not even one step fits, so PGD-1 (2.5 eps from a random start) is the floor shown. "
          "SSIM: tf.image.ssim(x, x_hat, max_val=1), mean."
          + (f" Step times: each entry's training batch size, {FLAGS.step_timing_steps} steps."
             if FLAGS.time_steps else ""))


if __name__ == "__main__":
    cli.run(main)
