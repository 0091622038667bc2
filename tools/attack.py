"""Attacks a classifier with a trained generator, beside PGD, and keeps the result: tfadv's main job end to end.

    tfadv-attack                                        # U-Net, L2 2.4, vs the zoo's fashion_mnist_small_cnn
    tfadv-attack --quick                                # the same in ~3 minutes (1 short epoch)
    tfadv-attack --target=my_classifier.keras           # your own classifier ([0, 1] images in, logits out)
    tfadv-attack --target=my_saved_model_dir --pixel_scale=255 --image_dir=my_images   # SavedModel taking 0-255
    tfadv-attack --target=my_classifier.keras --train_dir=my_images --quick            # trained on your images
    tfadv-attack --experiment=fashion_mnist_universal_l2 --set epochs=1

Steps: train the generator against --target (Keras progress bar, TensorBoard
logs; a finished run in --workdir is reused, a killed one resumes), measure it
on the full eval split beside the clean accuracy and beside PGD at the same
budget on the first --pgd_examples images, write a report (Markdown + PNG
figures), export the generator to the working zoo --zoo_dir, and check the
exported copy with plain ``tf.saved_model.load``. With --train_dir all of it
runs on your labelled images (tfadv.data.own): train part, validation part,
test part.
"""

import os

from absl import flags

from tfadv import cli
from tfadv.attack_job import QUICK_PGD_EXAMPLES, QUICK_STEPS

cli.define_experiment_flags()
flags.adopt_module_key_flags(cli)
flags.FLAGS.set_default("experiment", "fashion_mnist_unet_l2")
flags.DEFINE_string("target", None, "Classifier to attack: a .keras file, a SavedModel directory or a zoo entry "
                    "name, taking [0, 1] images and returning logits (default: the experiment's target).")
flags.DEFINE_float("pixel_scale", 1.0, "Your --target expects pixels in [0, pixel_scale] (e.g. 255): it is wrapped to "
                   "multiply its [0, 1] input inside, so preprocessing lives in the model.", lower_bound=1e-6)
flags.DEFINE_bool("strip_softmax", False, "Your .keras --target ends in a softmax: attack its logits instead (the "
                  "final softmax is removed from the loaded copy, not from your file).")
flags.DEFINE_string("image_dir", None, "Measure (not train) on a folder of labelled images instead of the eval split: "
                    "one subfolder per class, sorted names = class indices; resized to the dataset's image size.")
flags.DEFINE_string("train_dir", None, "Train on your own labelled images instead of the experiment's dataset: a "
                    "folder with one subfolder per class (sorted names = class indices), of which a seeded 10% of "
                    "each class is held out for validation and 10% for test (--set data.holdout=0.2 for 20%), or "
                    "with train/, val/ and test/ subfolders of that form. Images are resized to --target's input; "
                    "the report, PGD and export use the test part. A U-Net's depth fits the image size.")
flags.DEFINE_string("zoo_dir", "runs/zoo", "Working zoo the generator is exported to (never the committed zoo/).")
flags.DEFINE_string("name", None, "Zoo entry name of the exported generator (default: from experiment and target).")
flags.DEFINE_integer("pgd_examples", 500, "PGD runs on the first N eval images (it is ~100x slower).", lower_bound=1)
flags.DEFINE_integer("pgd_steps", 40, "PGD steps (random start, step 2.5 * eps / steps).", lower_bound=1)
flags.DEFINE_integer("batch_size", 500, "Batch size for measuring and attacking.", lower_bound=1)
flags.DEFINE_integer("figure_examples", 8, "Examples shown in each attack figure.", lower_bound=1)
flags.DEFINE_bool("quick", False, f"A few-minute run: 1 epoch of at most {QUICK_STEPS} steps, a generator without "
                  f"BatchNorm, PGD on at most {QUICK_PGD_EXAMPLES} images (explicit --set / --epochs / "
                  "--steps_per_epoch win).")
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import config as config_lib
    from tfadv import report
    from tfadv.attack_job import COLUMNS, attack_config, run_attack

    if "list_experiments" in FLAGS and FLAGS.list_experiments:  # the shared experiment flags' own exits
        print(cli.experiment_list())
        return
    cfg = cli.resolve_experiment(FLAGS)
    explicit = {config_lib.parse_override(s)[0] for s in FLAGS.set}  # the quick settings leave these alone
    explicit |= {name for name in ("epochs", "steps_per_epoch") if name in FLAGS and FLAGS[name].value}
    options = dict(experiment=FLAGS.experiment, config_file=FLAGS.config, target=FLAGS.target,
                   pixel_scale=FLAGS.pixel_scale, strip_softmax=FLAGS.strip_softmax, quick=FLAGS.quick,
                   explicit=explicit, train_dir=FLAGS.train_dir, image_dir=FLAGS.image_dir)
    if "print_config" in FLAGS and FLAGS.print_config:
        print(cli.config_json(attack_config(cfg, **options)))
        return
    result = run_attack(cfg, **options, workdir=FLAGS.workdir, zoo_dir=FLAGS.zoo_dir, name=FLAGS.name,
                        pgd_examples=FLAGS.pgd_examples, pgd_steps=FLAGS.pgd_steps, batch_size=FLAGS.batch_size,
                        figure_examples=FLAGS.figure_examples, verbose=cli.fit_verbosity(),
                        log=lambda line: print(line, flush=True))

    print()
    print(f"target {result.config.target}: clean accuracy {result.clean_accuracy:.4f} on {result.images} images "
          f"({result.data_source})")
    print(report.markdown_table(COLUMNS, result.rows[1:]))
    if result.note:
        print(f"\n{result.note}")
    print(f"\nexported: {result.saved_model_dir}; tf.saved_model.load check: adv accuracy "
          f"{result.checked_adv_accuracy:.4f} (before export {result.adv_accuracy:.4f})")
    print(f"report:      {result.report}")
    print(f"figures:     {result.report_dir}/*.png (training grids: {os.path.join(result.workdir, 'images')})")
    print(f"TensorBoard: tensorboard --logdir {os.path.join(result.workdir, 'logs')}")
    print(f"total time:  {result.seconds:.0f} s")


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
