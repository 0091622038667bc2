"""Transfer attacks: generators and iterative baselines made on a surrogate, measured on models they never saw.

    tfadv-transfer --generators=fashion_mnist_transfer_ltp --surrogate=fashion_mnist_small_cnn \
        --targets=fashion_mnist_cnn_gap,fashion_mnist_mlp --defended=fashion_mnist_pgd_defense_linf
    tfadv-transfer --experiment=fashion_mnist_transfer_cda --workdir=runs/cda --epochs=1   # train one first
    tfadv-transfer --generators=... --square_queries=1000                # + Square from scratch vs from x_hat

Prints and writes (--output_dir) the table: per attack and target the fooling rate (among the images the target
classifies correctly, the share the attack makes it misclassify) and the mean over unseen undefended targets
(the attack's surrogates left out), the defended targets apart; a heatmap PNG; with --square_queries the
black-box table (Square with scores only: success at 10, 100 and 1,000 queries, median queries to success).
Every image is checked against the budget in float64. --record adds the table to each generator zoo entry.
"""

import shlex
import sys

from absl import flags

from tfadv import cli

DEFAULT_TARGETS = ["fashion_mnist_cnn_gap", "fashion_mnist_mlp", "fashion_mnist_cnn_wide", "fashion_mnist_mixer",
                   "fashion_mnist_resnet20"]
flags.DEFINE_list("generators", [], "Generator zoo entries or run folders (attacker.keras) to measure.")
flags.DEFINE_string("experiment", None, "Train this generator recipe first (into --workdir) and measure it too.")
flags.DEFINE_string("workdir", None, "Run folder for --experiment (a killed run resumes).")
flags.DEFINE_integer("epochs", None, "Override the recipe's epochs (--experiment).", lower_bound=1)
flags.DEFINE_string("surrogate", "fashion_mnist_small_cnn",
                    "The baselines' surrogate: a zoo name, .keras or SavedModel; join several with '+'.")
flags.DEFINE_list("targets", DEFAULT_TARGETS, "Undefended target classifiers (zoo names, .keras, SavedModels).")
flags.DEFINE_list("defended", ["fashion_mnist_pgd_defense_linf", "fashion_mnist_trades_defense_linf"],
                  "Defended targets, reported apart.")
flags.DEFINE_list("baselines", ["pgd", "mi_fgsm", "di_ti_fgsm", "sgd_uap"], "Baselines run on --surrogate.")
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "Norm of the budget.")
flags.DEFINE_float("eps", 0.1, "Radius of the budget on [0, 1] images.", lower_bound=0.0)
flags.DEFINE_string("dataset", "fashion_mnist", "Dataset of the images.")
flags.DEFINE_string("split", "test[:1000]", "Images to attack (choose recipes on train[90%:], report on test).")
flags.DEFINE_integer("target_class", None, "Also report targeted success towards this class.", lower_bound=0)
flags.DEFINE_integer("square_queries", 0, "Run Square (scores only) on the unseen targets with this many queries, "
                     "from scratch and from each generator's x_hat (0: skip).", lower_bound=0)
flags.DEFINE_integer("square_examples", 200, "Images of --split for the Square table.", lower_bound=1)
flags.DEFINE_string("output_dir", "runs/transfer_report", "Where report.md, the heatmap and transfer.json go.")
flags.DEFINE_bool("record", False, "Add the table to each generator zoo entry (transfer_<norm>_<eps>).")
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_string("idx_dir", None, "Folder of MNIST-format IDX files (default: tfadv.data's search).")
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import experiments, training, transfer_report
    from tfadv.errors import ConfigError

    generators = list(FLAGS.generators)
    if FLAGS.experiment:
        if not FLAGS.workdir:
            raise ConfigError("--experiment trains a generator: pass --workdir for its run folder.")
        cfg = experiments.get_experiment(FLAGS.experiment)
        if FLAGS.epochs:
            cfg.epochs = FLAGS.epochs
        training.run_experiment(cfg, FLAGS.workdir)
        generators.append(FLAGS.workdir)
    if not generators and not FLAGS.baselines:
        raise ConfigError("Nothing to measure: pass --generators, --experiment or --baselines.")
    # The recorded command reproduces the table (tools/build_zoo.sh reruns it); where a copy went is not part of it.
    command = "python tools/transfer.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]
                                                     if not a.startswith("--output_dir"))
    table = transfer_report.run_transfer(
        surrogate=FLAGS.surrogate, generators=generators, targets=FLAGS.targets, defended=FLAGS.defended,
        norm=FLAGS.norm, eps=FLAGS.eps, dataset=FLAGS.dataset, split=FLAGS.split, baselines=FLAGS.baselines,
        target_class=FLAGS.target_class, square_queries=FLAGS.square_queries,
        square_examples=FLAGS.square_examples, output_dir=FLAGS.output_dir, command=command, record=FLAGS.record,
        zoo_dir=FLAGS.zoo_dir, idx_dir=FLAGS.idx_dir)
    summary = {"unseen_mean_fooling_rate": {r["attack"]: r["unseen_mean"] for r in table["rows"]},
               "defended_mean_fooling_rate": {r["attack"]: r["defended_mean"] for r in table["rows"]},
               "report": f"{FLAGS.output_dir}/report.md"}
    cli.print_json(summary)


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
