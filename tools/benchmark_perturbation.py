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


def main(argv):
    from tfadv import data as data_lib
    from tfadv import evaluation, markdown, zoo
    from tfadv.benchmarks import perturbation
    from tfadv.data.images import write_png

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
        entries = FLAGS.figure_entries or names
        unknown = [n for n in entries if n not in registry]
        if unknown:
            raise SystemExit(f"--figure_entries: not in the zoo: {', '.join(unknown)}")
        image = perturbation.entries_figure(entries, classifier, ds, FLAGS.figure_examples, dataset)
        print(f"figure: {write_png(FLAGS.figure, image)} (first {FLAGS.figure_examples} {FLAGS.split} images; "
              f"columns x, {', '.join(entries)})", flush=True)
    if not FLAGS.table:
        return
    clean = evaluation.evaluate_classifier(classifier.serve, ds)
    print(f"target {FLAGS.target}: clean accuracy {clean['accuracy']:.4f} on {clean['num_examples']} "
          f"{dataset}[{FLAGS.split}] images (source {info.source}:{info.location})\n")
    rows = (perturbation.entry_row(name, registry[name], FLAGS.target, classifier, ds, pgd_ds,
                                   pgd_steps=FLAGS.pgd_steps, time_xla=FLAGS.time_xla,
                                   step_timing_steps=FLAGS.step_timing_steps if FLAGS.time_steps else None)
            for name in names)  # measured one by one as the table asks for them
    for line in markdown.table_lines(perturbation.header(FLAGS.pgd_steps), rows):
        print(line, flush=True)
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
