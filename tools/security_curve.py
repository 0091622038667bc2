r"""Security curve of a zoo classifier: accuracy under PGD and the standard AutoAttack at several budgets.

    python tools/security_curve.py --zoo_name=fashion_mnist_pgd_defense_linf --eps=0.05,0.1,0.15,0.2,0.3 --record
    python tools/security_curve.py --zoo_name=fashion_mnist_pgd_defense_l2 --norm=l2 --eps=0.5,1,1.5,2,3 \
        --figure=curve.png

Each point is PGD (--pgd_steps, --pgd_restarts; restarts count a success) on the first --num_examples test images
and AutoAttack (--version, standard by default) on the first --autoattack_examples of them (0: PGD only). Prints a
line per budget and the curve as JSON; --figure writes the line chart as a PNG; --record writes the curve into the
entry's metrics as ``security_curve_<norm>`` (the artifact is untouched). A sound curve falls as eps grows;
one that stays flat points at gradient masking.
"""

import shlex
import sys

from absl import flags

from tfadv import cli

flags.DEFINE_string("zoo_name", None, "Zoo classifier (its SavedModel's serve endpoint).", required=True)
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "Norm of the budgets.")
flags.DEFINE_list("eps", ["0.05", "0.1", "0.15", "0.2", "0.3"], "Budgets, increasing.")
flags.DEFINE_integer("num_examples", 1000, "PGD on the first N test images.", lower_bound=1)
flags.DEFINE_integer("autoattack_examples", 200, "AutoAttack on the first N of those (0: leave it out).",
                     lower_bound=0)
flags.DEFINE_enum("version", "standard", ["standard"], "AutoAttack's version (custom runs: tools/autoattack.py).")
flags.DEFINE_integer("pgd_steps", 100, "PGD steps at each budget.", lower_bound=1)
flags.DEFINE_integer("pgd_restarts", 2, "PGD random restarts at each budget.", lower_bound=1)
flags.DEFINE_integer("batch_size", 500, "Images per batch.", lower_bound=1)
flags.DEFINE_string("idx_dir", None, "Folder of MNIST-format IDX files (default: tfadv.data's search).")
flags.DEFINE_string("figure", None, "Write the curve as a PNG line chart here.")
flags.DEFINE_bool("record", False, "Write the curve into the zoo entry's metrics (security_curve_<norm>).")
flags.DEFINE_string("output", None, "Also write the curve as JSON to this file.")
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import security_curve
    from tfadv.autoattack import zoo_classifier_and_test_images
    from tfadv.data.images import write_png

    saved_model, images, labels, source = zoo_classifier_and_test_images(
        FLAGS.zoo_name, FLAGS.num_examples, FLAGS.zoo_dir, FLAGS.idx_dir, purpose="a security curve")
    curve = security_curve.measure(saved_model.serve, images, labels, norm=FLAGS.norm, eps_values=FLAGS.eps,
                                   pgd_steps=FLAGS.pgd_steps, pgd_restarts=FLAGS.pgd_restarts,
                                   autoattack_examples=FLAGS.autoattack_examples, version=FLAGS.version,
                                   batch_size=FLAGS.batch_size, log=lambda line: print(line, flush=True))
    curve.update(split=f"test[:{FLAGS.num_examples}]", data_source=source, command="python tools/security_curve.py "
                 + " ".join(shlex.quote(a) for a in sys.argv[1:]
                            if not a.startswith(("--output", "--figure"))))
    if FLAGS.figure:
        title = f"{FLAGS.zoo_name}: accuracy against the budget, first test images"
        write_png(FLAGS.figure, security_curve.figure(curve, title=title))
    if FLAGS.record:
        curve["recorded_under"] = security_curve.record(FLAGS.zoo_name, curve, FLAGS.zoo_dir)
    cli.print_json(curve, FLAGS.output)


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
