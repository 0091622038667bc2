"""Benchmark: tfadv's native AutoAttack stages against ART's, stage by stage, on the same images, in one run.

    python tools/benchmark_autoattack.py --zoo_name=fashion_mnist_pgd_defense_linf --num_examples=1000 \
        --output=/tmp/aa_speed.json
    python tools/benchmark_autoattack.py --zoo_name=fashion_mnist_pgd_defense_linf --num_examples=1000 \
        --rows=art-reduced,native-reduced,native-standard

Rows (each on the first --num_examples test images of the zoo entry, its SavedModel's ``serve`` loaded once):

* ``native:<stage>`` / ``art:<stage>``: one stage alone, on the images classified correctly, with the settings the
  reduced ART version ran (APGD-CE 100 iterations; APGD-T 3 targets, 100 iterations: the native stage uses Croce &
  Hein's targeted DLR, ART's its untargeted DLR towards the target; Square 500 queries, p_init 0.8);
* ``art-reduced``: the whole reduced version through ART (tfadv.autoattack.art, what figures before used);
* ``native-reduced``: the same three stages native;
* ``native-standard``: the native standard version (APGD-CE, APGD-T and FAB-T with 9 targets, Square 5000).

Each row: robust accuracy after it and wall seconds, scaled to seconds per 1,000 images; the first call of a
native stage includes its tracing (a user pays it once per classifier and batch size); and the seconds the
classifier's own passes take for the calls the row's stages make (one forward and one input gradient timed on the
same images before the rows run, times the calls: an estimate of the floor no implementation of those stages gets
under on this machine). Prints a Markdown table and the JSON result (also written to --output).
"""

from absl import flags

from tfadv import cli
from tfadv.benchmarks.autoattack import ROWS, per_image_seconds, run_row, table

flags.DEFINE_string("zoo_name", "fashion_mnist_pgd_defense_linf", "Zoo classifier to attack.")
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_string("idx_dir", None, "Folder of MNIST-format IDX files (default: tfadv.data's search).")
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "Norm of the budget.")
flags.DEFINE_float("eps", 0.1, "Radius of the budget.", lower_bound=0.0)
flags.DEFINE_integer("num_examples", 200, "The first N test images.", lower_bound=1)
flags.DEFINE_list("rows", ROWS, f"Rows to run, from {', '.join(ROWS)}.")
flags.DEFINE_string("output", None, "Also write the JSON result to this file.")
FLAGS = flags.FLAGS


def main(argv):
    import tensorflow as tf

    from tfadv import data, zoo
    from tfadv.errors import ConfigError

    unknown = sorted(set(FLAGS.rows) - set(ROWS))
    if unknown:
        raise ConfigError(f"Unknown --rows {', '.join(unknown)}; known: {', '.join(ROWS)}.")
    entry = zoo.entry(FLAGS.zoo_name, FLAGS.zoo_dir)
    loaded = tf.saved_model.load(zoo.verify(FLAGS.zoo_name, FLAGS.zoo_dir))
    images, labels, info = data.load_arrays(entry["dataset"], f"test[:{FLAGS.num_examples}]", idx_dir=FLAGS.idx_dir)
    passes = per_image_seconds(loaded.serve, images, labels)
    print(f"classifier alone, {passes['batch']} images at once: {passes['forward'] * 1e3:.4f} ms per image forward, "
          f"{passes['gradient'] * 1e3:.4f} ms per input gradient", flush=True)
    rows = []
    for row in FLAGS.rows:
        rows.append(run_row(row, loaded.serve, images, labels, FLAGS.norm, FLAGS.eps, passes))
        print(f"{row}: {rows[-1]['robust_accuracy']:.4f} in {rows[-1]['seconds']} s", flush=True)
    print(f"\n{FLAGS.zoo_name}, {FLAGS.norm} {FLAGS.eps:g}, first {len(labels)} test images "
          f"({getattr(info, 'source', '?')}), 2-core CPU\n")
    print(table(rows))
    cli.print_json({"zoo_name": FLAGS.zoo_name, "norm": FLAGS.norm, "eps": FLAGS.eps,
                    "split": f"test[:{len(labels)}]", "classifier_passes": passes, "rows": rows}, FLAGS.output)


if __name__ == "__main__":
    cli.run(main)
