"""Defends your own classifier: adversarial training of a copy of your Keras model with the zoo's recipes.

    tfadv-defend --model=my_cnn.keras --workdir=runs/my_cnn_pgd                  # PGD-7, L-inf 0.1, Fashion-MNIST
    tfadv-defend --model=my_cnn.keras --workdir=runs/my_cnn_trades --method=trades
    tfadv-defend --model=my_cnn.keras --workdir=runs/quick --epochs=1 --steps_per_epoch=50 --autoattack_examples=100
    tfadv-defend --model=my_cnn.keras --workdir=runs/mine_pgd --train_dir=my_images   # your own labelled images

Your model takes [0, 1] images of the data's shape (Fashion-MNIST, or --train_dir's images read at your model's
input size) and returns logits (checked before training). It becomes the model of the zoo's recipe for --method
and --norm (tfadv.adversarial_training.RECIPES): held-out validation, the overfitting guard where the recipe has
one, TensorBoard logs, a crash-safe backup (rerun the same command to resume), WORKDIR/model.keras. Your file is
only read. Then your model and the defended one are measured on the same first test images (clean, PGD-100,
standard AutoAttack) into WORKDIR/report.md and report.json.
"""

from absl import flags

from tfadv import cli

flags.DEFINE_string("model", None, "Your classifier: a .keras file ([0, 1] images in, logits out).")
flags.DEFINE_string("workdir", None, "Run folder (config.json, logs/, backup/, model.keras, report.md).")
flags.DEFINE_string("train_dir", None, "Train on your own labelled images instead of Fashion-MNIST: a folder with one "
                    "subfolder of images per class (10% of each class held out for validation and 10% for test, "
                    "recorded in WORKDIR/data_split.json; --set data.holdout=0.2 for another share), or train/, val/ "
                    "and test/ subfolders. The report measures the test part.")
flags.DEFINE_enum("method", "pgd", ["pgd", "trades", "fgsm"], "Adversarial training method.")
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "Norm of the budget (l2: pgd only).")
flags.DEFINE_float("eps", 0.1, "Radius of the budget on [0, 1] images.", lower_bound=0.0)
flags.DEFINE_bool("reinitialize", False, "Train your architecture from fresh weights instead of your weights.")
flags.DEFINE_multi_string("set", [], "Override a field of the recipe: --set data.batch_size=64 --set epochs=5.")
flags.DEFINE_integer("epochs", None, "Shortcut for --set epochs=N.", lower_bound=1)
flags.DEFINE_integer("steps_per_epoch", None, "Shortcut for --set steps_per_epoch=N.", lower_bound=1)
flags.DEFINE_integer("pgd_examples", 1000, "PGD-100 on the first N test images (0: skip).", lower_bound=0)
flags.DEFINE_integer("autoattack_examples", 1000, "Standard AutoAttack on the first N test images (0: skip; about "
                     "20-35 minutes per model for 1,000 on a 2-core CPU).", lower_bound=0)
flags.mark_flags_as_required(["model", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import config as config_lib
    from tfadv.adversarial_training import defend, report_markdown

    overrides = dict(config_lib.parse_override(s) for s in FLAGS.set)
    overrides.update({k: FLAGS[k].value for k in ("epochs", "steps_per_epoch") if FLAGS[k].value is not None})
    report = defend(FLAGS.model, FLAGS.workdir, data=FLAGS.train_dir, method=FLAGS.method, norm=FLAGS.norm,
                    eps=FLAGS.eps, reinitialize=FLAGS.reinitialize, overrides=overrides, pgd_examples=FLAGS.pgd_examples,
                    autoattack_examples=FLAGS.autoattack_examples, verbose=cli.fit_verbosity())
    print(report_markdown(report))


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
