"""Evaluates a zoo entry or a trained run on a dataset split.

    tfadv-evaluate --zoo_name=fashion_mnist_small_cnn          # checksum-verified zoo SavedModel
    tfadv-evaluate --workdir=runs/fmnist                        # WORKDIR's trained model + its config
    tfadv-evaluate --zoo_name=fashion_mnist_unet_l2 --target=other_classifier   # transfer
    tfadv-evaluate --zoo_name=fashion_mnist_universal_l2 --figures_dir=runs/figures  # + figures and report.md

Prints the metrics as JSON, led by what was read: the zoo folder (``zoo_dir``) or run folder, and for
attacks the ``budget`` ({norm, eps}) their norms are judged against (null: the entry guarantees none). For a
defended classifier it also prints its recorded robustness tables (PGD, generators, AutoAttack) to stderr.
"""

import sys

from absl import flags

from tfadv import cli

flags.DEFINE_string("zoo_name", None, "Zoo entry to evaluate (its SavedModel's serve endpoint).")
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_string("workdir", None, "A training run folder holding model.keras and config.json.")
flags.DEFINE_string("split", "test", "Split to evaluate, e.g. test or test[:1000].")
flags.DEFINE_enum("source", "auto", ["auto", "tfds", "keras", "idx"], "Data source (see tfadv.data).")
flags.DEFINE_string("idx_dir", None, "Folder of MNIST-format IDX files.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data_dir with prepared datasets.")
flags.DEFINE_integer("batch_size", 256, "Evaluation batch size.", lower_bound=1)
flags.DEFINE_string("target", None, "For perturbation entries: evaluate against this zoo classifier instead of "
                    "the entry's own target (transfer to another model).")
flags.DEFINE_string("output", None, "Also write the metrics as JSON to this file.")
flags.DEFINE_string("figures_dir", None, "With --zoo_name: write the entry's figures (attacks: x | delta | x_hat on "
                    "the split's first 8 images, universal ones also U and the confusion heatmap; classifiers: their "
                    "mistakes) and a report.md beside them to this folder.")
flags.register_validator("figures_dir", lambda v: v is None or bool(flags.FLAGS["zoo_name"].value),
                         message="--figures_dir works with --zoo_name (a zoo entry), not --workdir.")
flags.register_multi_flags_validator(["zoo_name", "workdir"], lambda v: bool(v["zoo_name"]) != bool(v["workdir"]),
                                     message="Give exactly one of --zoo_name or --workdir.")
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import entry_report

    result = entry_report.evaluate(zoo_name=FLAGS.zoo_name, workdir=FLAGS.workdir, zoo_dir=FLAGS.zoo_dir,
                                   target=FLAGS.target, figures_dir=FLAGS.figures_dir, split=FLAGS.split,
                                   source=FLAGS.source, idx_dir=FLAGS.idx_dir, tfds_data_dir=FLAGS.tfds_data_dir,
                                   batch_size=FLAGS.batch_size)
    cli.print_json(result.metrics, FLAGS.output)
    if result.recorded:  # a defended classifier: its recorded robustness, beside the clean accuracy just measured
        print(f"\nRecorded robustness of {FLAGS.zoo_name} (zoo/registry.json):\n{result.recorded}", file=sys.stderr)
    if result.report:
        print(f"report: {result.report}", file=sys.stderr)  # stdout stays JSON


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
