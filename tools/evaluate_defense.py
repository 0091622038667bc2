"""The defense evaluation table, from one command (prints it; writes JSON with --output).

    python tools/evaluate_defense.py --defended=fashion_mnist_joint_defense_linf,fashion_mnist_pgd_defense_linf \
        --undefended=fashion_mnist_small_cnn --norm=linf --eps=0.1

Rows per classifier (the undefended one too, as the baseline): clean accuracy; accuracy under the co-trained
generator (co_trained defenses: their zoo entry NAME_generator, which tfadv-export writes); under a *fresh* U-Net generator trained from scratch against the
frozen classifier; under PGD with many steps and random restarts; under the undefended classifier's zoo
perturbations at this norm (transfer). A defense that only beats its own generator shows it here.
"""

import json
import sys

from absl import flags

from tfadv import cli

flags.DEFINE_list("defended", [], "Zoo entries of defended classifiers.")
flags.DEFINE_string("undefended", "fashion_mnist_small_cnn", "The undefended zoo classifier (baseline row).")
flags.DEFINE_bool("baseline_row", True, "Also measure the undefended classifier's row (--nobaseline_row: it only "
                  "supplies the transfer columns, e.g. when adding a defense to a table whose baseline is recorded).")
flags.DEFINE_enum("norm", "linf", ["l2", "linf"], "Budget norm of every attack.")
flags.DEFINE_float("eps", 0.1, "Budget of every attack.")
flags.DEFINE_integer("pgd_steps", 100, "PGD steps.", lower_bound=1)
flags.DEFINE_integer("pgd_restarts", 2, "PGD random restarts.", lower_bound=1)
flags.DEFINE_integer("pgd_examples", 1000, "Test images PGD runs on (the first ones).", lower_bound=1)
flags.DEFINE_integer("fresh_epochs", 2, "Epochs of the fresh generator trained against each classifier.",
                     lower_bound=1)
flags.DEFINE_integer("fresh_steps_per_epoch", None, "Cap on the fresh generator's steps per epoch.",
                     lower_bound=1)
flags.DEFINE_list("attacks", [], "More registered attacks (tfadv.attacks.ATTACKS, e.g. fgsm) at their default "
                  "settings, one column each, on the PGD images.")
flags.DEFINE_bool("fixed_only", False, "Only the columns of fixed artifacts (clean, co-trained generator, transfer): "
                  "with --record, they update the recorded table (after a zoo perturbation was retrained) and the "
                  "other columns stay.")
flags.DEFINE_bool("pgd_only", False, "Only clean accuracy and the PGD column: with --record, they update the "
                  "recorded table (e.g. a table measured before PGD's restarts counted a success) and the other "
                  "columns stay.")
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: the checkout's zoo/).")
flags.DEFINE_string("idx_dir", None, "Local IDX files of the dataset (default: the automatic data sources).")
flags.DEFINE_string("output", None, "Also write the table as JSON here.")
flags.DEFINE_bool("record", False, "Also write each row into its classifier's zoo registry metrics "
                  "(robustness_<norm>_<eps>, with the settings and the command).")
FLAGS = flags.FLAGS


def main(argv):
    import functools

    from tfadv import defense_report, training

    fresh = functools.partial(training.fresh_generator, norm=FLAGS.norm, eps=FLAGS.eps, epochs=FLAGS.fresh_epochs,
                              steps_per_epoch=FLAGS.fresh_steps_per_epoch, idx_dir=FLAGS.idx_dir,
                              zoo_dir=FLAGS.zoo_dir)
    rows = defense_report.report(FLAGS.defended, FLAGS.undefended, FLAGS.norm, FLAGS.eps, fresh_generator=fresh,
                                 zoo_dir=FLAGS.zoo_dir, idx_dir=FLAGS.idx_dir, pgd_steps=FLAGS.pgd_steps,
                                 pgd_restarts=FLAGS.pgd_restarts, pgd_examples=FLAGS.pgd_examples,
                                 attacks=FLAGS.attacks, fixed_only=FLAGS.fixed_only, pgd_only=FLAGS.pgd_only,
                                 baseline_row=FLAGS.baseline_row)
    print(defense_report.markdown(rows))
    if FLAGS.record:
        names = ("undefended", "norm", "eps")
        if not FLAGS.fixed_only:
            names += ("pgd_steps", "pgd_restarts", "pgd_examples")
        if not (FLAGS.fixed_only or FLAGS.pgd_only):
            names += ("fresh_epochs", "fresh_steps_per_epoch", "attacks")
        settings = {name: FLAGS[name].value for name in names}
        settings["command"] = " ".join(["python tools/evaluate_defense.py"] + sys.argv[1:])
        key = defense_report.record(rows, settings, FLAGS.zoo_dir, update=FLAGS.fixed_only or FLAGS.pgd_only)
        print(f"recorded as {key} in the zoo registry")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    cli.run(main)
