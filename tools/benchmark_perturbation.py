"""Benchmark: perturbation generators vs PGD, one table from one run (prints its figures; not a test).

    python tools/benchmark_perturbation.py [--target=fashion_mnist_small_cnn] [--pgd_examples=10000]

For every perturbation entry of the zoo that attacks ``--target``: adversarial
accuracy, fooling rate and mean L2 of its SavedModel on the test split; PGD-40
at the same budget (the entry's eps, or its measured mean L2 for the unbounded
joint models) side by side; attack throughput (images/s) of generator and PGD
and their ratio. Then the training step time of ``fit`` against a bare
``tf.function(jit_compile=True)`` of the same train_step.
"""

import time

from absl import flags

from tfadv import cli

flags.DEFINE_string("target", "fashion_mnist_small_cnn", "Zoo classifier under attack.")
flags.DEFINE_list("entries", [], "Perturbation zoo entries (default: every entry whose target is --target).")
flags.DEFINE_string("split", "test", "Evaluation split.")
flags.DEFINE_integer("pgd_steps", 40, "PGD steps.", lower_bound=1)
flags.DEFINE_integer("pgd_examples", 10000, "Test examples PGD runs on (it is the slow column).", lower_bound=1)
flags.DEFINE_integer("batch_size", 500, "Batch size for evaluation and attacks.", lower_bound=1)
flags.DEFINE_integer("step_timing_steps", 10, "Steps timed for fit vs bare XLA train_step.", lower_bound=2)
flags.DEFINE_bool("time_xla", True, "Also time a bare tf.function(jit_compile=True) train_step (slow to run on CPU).")
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
    from tfadv.tasks.perturbation import build_perturbation_trainer

    cfg = experiments.from_dict(entry_config)
    batches = ds.unbatch().batch(cfg.data.batch_size, drop_remainder=True).take(steps + 1).cache()
    trainer = build_perturbation_trainer(cfg, classifier, cfg_shape(cfg))
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    trainer.fit(batches.take(1), verbose=0)
    start = time.perf_counter()
    trainer.fit(batches.skip(1), verbose=0)
    fit_time = (time.perf_counter() - start) / steps
    if not FLAGS.time_xla:
        return fit_time, "not timed"
    bare_trainer = build_perturbation_trainer(cfg, classifier, cfg_shape(cfg))
    bare_trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    bare_trainer.optimizer.build(bare_trainer.attacker.trainable_variables)
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
    pgd_ds = ds.unbatch().take(FLAGS.pgd_examples).batch(FLAGS.batch_size)
    clean = evaluation.evaluate_classifier(classifier.serve, ds)
    print(f"target {FLAGS.target}: clean accuracy {clean['accuracy']:.4f} on {clean['num_examples']} "
          f"{dataset}[{FLAGS.split}] images (source {info.source}:{info.location})\n")

    header = ("entry", "generator", "mode", "loss", "budget", "gen adv acc", "gen fool", "gen L2",
              f"PGD-{FLAGS.pgd_steps} adv acc", "PGD fool", "PGD L2", "gen img/s", "PGD img/s", "speed ratio",
              "fit s/step", "bare XLA s/step")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    for name in names:
        entry = registry[name]
        attack = zoo.load(name)
        gen = evaluation.measure_attack(attack.serve, classifier.serve, ds)
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
        fit_t, bare_t = _step_times(entry["config"], zoo.keras_layer(FLAGS.target), ds,
                                    FLAGS.step_timing_steps)
        row = (name, entry["config"]["generator"], entry["config"]["mode"], entry["config"]["loss"],
               f"{budget['norm']} {budget['eps']:.3g}", gen["adv_accuracy"], gen["fooling_rate"],
               gen["l2_mean"], pgd_acc, pgd_fool, pgd_l2, gen_speed, pgd_speed, gen_speed / pgd_speed,
               fit_t, bare_t)
        cells = [f"{v:.4f}" if isinstance(v, float) and v < 10 else f"{v:.0f}" if isinstance(v, float) else str(v)
                 for v in row]
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"\nPGD ran on the first {min(FLAGS.pgd_examples, clean['num_examples'])} test images; generators on all "
          f"{clean['num_examples']}. Step times: each entry's training batch size, {FLAGS.step_timing_steps} steps.")


if __name__ == "__main__":
    cli.run(main)
