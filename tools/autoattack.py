"""AutoAttack (tfadv.autoattack, native TensorFlow) against any classifier: the robustness yardstick.

    python tools/autoattack.py --zoo_name=fashion_mnist_pgd_defense_linf --norm=linf --eps=0.1 --num_examples=1000 --record
    python tools/autoattack.py --classifier=my_model.keras --dataset=fashion_mnist --norm=l2 --eps=1.5
    python tools/autoattack.py --zoo_name=NAME --version=custom --stages=apgd-ce,apgd-t --targets=3   # not standard

--version=standard (the default) runs the reference implementation's standard stages and settings (APGD-CE,
APGD-T and FAB-T with 9 targets and 100 iterations, Square with 5000 queries); any stage or setting flag that
differs from them needs --version=custom, and the result says so. A zoo entry is loaded with plain
``tf.saved_model.load`` after its checksum; --classifier takes a .keras file, a SavedModel folder or a zoo name
([0, 1] images in, logits out; --pixel_scale=255 for a model that expects 0-255 pixels). Attacks the first
--num_examples test images, prints the robust accuracy after each stage and the result as JSON. --record adds it
to the zoo entry's ``robustness_<norm>_<eps>`` table as ``autoattack`` (standard) or ``autoattack_custom``; the
artifact is untouched.
"""

import shlex
import sys

from absl import flags

from tfadv import cli
from tfadv.autoattack import STAGES, STANDARD

flags.DEFINE_string("zoo_name", None, "Zoo classifier to attack (its SavedModel's serve endpoint).")
flags.DEFINE_string("classifier", None, "Or: a .keras file, a SavedModel folder or a zoo name (not recordable).")
flags.DEFINE_string("dataset", None, "Dataset of the test images (default: the zoo entry's; else fashion_mnist).")
flags.DEFINE_float("pixel_scale", 1.0, "--classifier expects pixels in [0, pixel_scale] (e.g. 255).")
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "Norm of the budget.")
flags.DEFINE_float("eps", 0.1, "Radius of the budget on [0, 1] images.", lower_bound=0.0)
flags.DEFINE_integer("num_examples", 1000, "Attack the first N images of the test split.", lower_bound=1)
flags.DEFINE_enum("version", "standard", ["standard", "custom", "art-reduced"],
                  "standard: the reference's stages and settings; art-reduced: the reduced AutoAttack through ART "
                  "that figures before the native version used (APGD-CE, APGD-T with 3 targets, Square 500).")
flags.DEFINE_list("stages", list(STANDARD["stages"]), f"Stages in order, from {', '.join(STAGES)} (custom).")
flags.DEFINE_integer("apgd_iter", STANDARD["apgd_iter"], "Iterations of each APGD run (custom).", lower_bound=1)
flags.DEFINE_integer("apgd_restarts", STANDARD["apgd_restarts"], "Random starts of APGD-CE (custom).",
                     lower_bound=1)
flags.DEFINE_integer("targets", STANDARD["targets"], "Target classes of APGD-T and FAB-T (custom).", lower_bound=1)
flags.DEFINE_integer("fab_iter", STANDARD["fab_iter"], "Iterations of each FAB-T run (custom).", lower_bound=1)
flags.DEFINE_integer("square_queries", STANDARD["square_queries"], "Square queries (custom).", lower_bound=1)
flags.DEFINE_integer("batch_size", 1000, "Images per stage batch.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the random starts and squares.")
flags.DEFINE_string("idx_dir", None, "Folder of MNIST-format IDX files (default: tfadv.data's search).")
flags.DEFINE_bool("record", False, "Add the figure to the zoo entry's robustness_<norm>_<eps> table.")
flags.DEFINE_string("output", None, "Also write the result as JSON to this file.")
FLAGS = flags.FLAGS
SETTING_FLAGS = ("stages", "apgd_iter", "apgd_restarts", "targets", "fab_iter", "square_queries")


def main(argv):
    from tfadv import autoattack
    from tfadv.errors import ConfigError

    if (FLAGS.zoo_name is None) == (FLAGS.classifier is None):
        raise ConfigError("Pass exactly one of --zoo_name (recordable) or --classifier.")
    if FLAGS.record and not FLAGS.zoo_name:
        raise ConfigError("--record writes into a zoo entry: pass --zoo_name.")
    settings = {name: FLAGS[name].value for name in SETTING_FLAGS if FLAGS[name].present}
    if FLAGS.version == "art-reduced":
        if not FLAGS.zoo_name or FLAGS.batch_size != 1000:
            raise ConfigError("--version=art-reduced reproduces recorded zoo figures: --zoo_name, default batch.")
        settings["batch_size"] = 500  # what the recorded ART figures used
    else:
        settings["batch_size"] = FLAGS.batch_size
    common = dict(norm=FLAGS.norm, eps=FLAGS.eps, num_examples=FLAGS.num_examples, version=FLAGS.version,
                  seed=FLAGS.seed, idx_dir=FLAGS.idx_dir, log=lambda line: print(line, flush=True), **settings)
    if FLAGS.zoo_name:
        result = autoattack.evaluate_zoo_entry(FLAGS.zoo_name, zoo_dir=FLAGS.zoo_dir, **common)
    else:
        result = autoattack.evaluate_classifier(FLAGS.classifier, dataset=FLAGS.dataset or "fashion_mnist",
                                                pixel_scale=FLAGS.pixel_scale, zoo_dir=FLAGS.zoo_dir, **common)
    # The recorded command reproduces the figure; where this run also wrote a copy (--output) is not part of it.
    result["command"] = "python tools/autoattack.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:] if not a.startswith("--output"))
    if FLAGS.record:
        result["recorded_under"] = autoattack.record(FLAGS.zoo_name, result, zoo_dir=FLAGS.zoo_dir)
    cli.print_json(result, FLAGS.output)


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
