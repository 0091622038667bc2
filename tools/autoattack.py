"""AutoAttack (from the Adversarial Robustness Toolbox) against a zoo classifier: an independent robustness column.

    python tools/autoattack.py --zoo_name=fashion_mnist_pgd_defense_linf --norm=linf --eps=0.1 --num_examples=1000
    python tools/autoattack.py --zoo_name=fashion_mnist_pgd_defense_l2 --norm=l2 --eps=1.5 --record

Loads the entry with plain ``tf.saved_model.load`` (after its checksum), attacks the first --num_examples test
images with the stages in order (each only on the images still classified correctly), prints the robust accuracy
after each stage and the final one as JSON. --record adds it as ``autoattack`` (figure, stages, settings, library
version, images, seconds, command) to the entry's ``robustness_<norm>_<eps>`` table; the artifact is untouched.
Needs the eval extra: pip install 'tfadv[eval]'.
"""

import shlex
import sys

from absl import flags

from tfadv import cli
from tfadv.autoattack import DEFAULTS, STAGES

flags.DEFINE_string("zoo_name", None, "Zoo classifier to attack (its SavedModel's serve endpoint).", required=True)
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "Norm of the budget.")
flags.DEFINE_float("eps", 0.1, "Radius of the budget on [0, 1] images.", lower_bound=0.0)
flags.DEFINE_integer("num_examples", 1000, "Attack the first N images of the test split.", lower_bound=1)
flags.DEFINE_list("stages", list(DEFAULTS["stages"]), f"Stages in order, from {', '.join(STAGES)}.")
flags.DEFINE_integer("apgd_iter", DEFAULTS["apgd_iter"], "Iterations of each APGD run.", lower_bound=1)
flags.DEFINE_integer("apgd_restarts", DEFAULTS["apgd_restarts"], "Random starts of each APGD run.", lower_bound=1)
flags.DEFINE_integer("targets", DEFAULTS["targets"], "APGD-T target classes (runner-ups of the clean logits "
                     "first); AutoAttack's standard is 9.", lower_bound=0, upper_bound=9)
flags.DEFINE_integer("square_queries", DEFAULTS["square_queries"], "Square attack iterations (queries).",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", DEFAULTS["batch_size"], "Images per attack batch.", lower_bound=1)
flags.DEFINE_integer("seed", DEFAULTS["seed"], "Seed of numpy's generator, which ART's random starts use.")
flags.DEFINE_string("idx_dir", None, "Folder of MNIST-format IDX files (default: tfadv.data's search).")
flags.DEFINE_bool("record", False, "Add the figure as `autoattack` to the entry's robustness_<norm>_<eps> table.")
flags.DEFINE_string("output", None, "Also write the result as JSON to this file.")
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import autoattack

    settings = {name: FLAGS[name].value for name in DEFAULTS if name in FLAGS}
    result = autoattack.evaluate_zoo_entry(FLAGS.zoo_name, norm=FLAGS.norm, eps=FLAGS.eps,
                                           num_examples=FLAGS.num_examples, zoo_dir=FLAGS.zoo_dir,
                                           idx_dir=FLAGS.idx_dir, log=lambda line: print(line, flush=True),
                                           **settings)
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
