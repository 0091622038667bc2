"""Exports a trained run into the zoo, measuring the exported SavedModel before it lands.

    tfadv-export --workdir=runs/fmnist --name=fashion_mnist_small_cnn [--zoo_dir=zoo] [--overwrite]

The SavedModel is written to a temporary folder inside the zoo, loaded back
with plain ``tf.saved_model.load`` and evaluated on the run's eval split; only
then is it renamed into place and registered (atomically) with those metrics.
"""

import json

from absl import flags

from tfadv import cli

flags.DEFINE_string("workdir", None, "Training run folder (model.keras + config.json).")
flags.DEFINE_string("name", None, "Zoo entry name (lowercase letters, digits, _ . -).")
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_bool("overwrite", False, "Replace an existing entry of the same name.")
flags.DEFINE_string("source", None, "Override the data source used to measure the export.")
flags.DEFINE_string("idx_dir", None, "Override the IDX folder used to measure the export.")
flags.mark_flags_as_required(["workdir", "name"])
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import export

    entry = export.export_run(FLAGS.workdir, FLAGS.name, zoo_dir=FLAGS.zoo_dir, overwrite=FLAGS.overwrite,
                                  source=FLAGS.source, idx_dir=FLAGS.idx_dir)
    print(json.dumps({FLAGS.name: entry}, indent=2))


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
