"""Evaluates a zoo entry or a trained run on a dataset split.

    tfadv-evaluate --zoo_name=fashion_mnist_small_cnn          # checksum-verified zoo SavedModel
    tfadv-evaluate --workdir=runs/fmnist                        # WORKDIR's trained model + its config
    tfadv-evaluate --zoo_name=fashion_mnist_unet_l2 --target=other_classifier   # transfer

Prints the metrics as JSON, led by what was read: the zoo folder (``zoo_dir``) or run folder, and for
attacks the ``budget`` ({norm, eps}) their norms are judged against (null: the entry guarantees none).
"""

import json
import os

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
flags.register_multi_flags_validator(["zoo_name", "workdir"], lambda v: bool(v["zoo_name"]) != bool(v["workdir"]),
                                     message="Give exactly one of --zoo_name or --workdir.")
FLAGS = flags.FLAGS


def what_was_read() -> dict:
    """The zoo (or run) folder evaluated and, for attacks, the budget their norms are judged against."""
    from tfadv import experiments, zoo

    if FLAGS.zoo_name:
        entry = zoo.entry(FLAGS.zoo_name, FLAGS.zoo_dir)
        read = {"zoo_dir": os.path.abspath(FLAGS.zoo_dir or zoo.default_zoo_dir())}
        return {**read, "budget": entry.get("budget")} if entry["kind"] in ("perturbation", "universal") else read
    cfg = experiments.load_json(os.path.join(FLAGS.workdir, "config.json"))
    read = {"workdir": os.path.abspath(FLAGS.workdir)}
    if cfg.kind != "perturbation":
        return read
    return {**read, "budget": None if cfg.mode == "joint" else {"norm": cfg.norm, "eps": cfg.eps}}


def main(argv):
    from tfadv import evaluation

    data_flags = dict(split=FLAGS.split, source=FLAGS.source, idx_dir=FLAGS.idx_dir,
                      tfds_data_dir=FLAGS.tfds_data_dir, batch_size=FLAGS.batch_size)
    if FLAGS.zoo_name:
        metrics = evaluation.evaluate_zoo_entry(FLAGS.zoo_name, zoo_dir=FLAGS.zoo_dir, target=FLAGS.target,
                                                **data_flags)
    else:
        metrics = evaluation.evaluate_run(FLAGS.workdir, **data_flags)
    name = {k: metrics[k] for k in ("zoo_name", "workdir") if k in metrics}
    metrics = {**name, **what_was_read(), **metrics}
    print(json.dumps(metrics, indent=2))
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(metrics, f, indent=2)


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
