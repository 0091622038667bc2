"""Trains an experiment: ``tfadv-train --experiment=fashion_mnist_cnn --workdir=runs/fmnist``.

    tfadv-train --list_experiments                                   # the named experiments
    tfadv-train --experiment=fashion_mnist_cnn --print_config        # every field, as JSON, then exit
    tfadv-train --experiment=fashion_mnist_cnn --workdir=runs/quick --epochs=1 --steps_per_epoch=50
    tfadv-train --config=runs/fmnist/config.json --workdir=runs/again --set data.batch_size=64

Rerunning the same command after a kill resumes from the last backup in
WORKDIR/backup. Outputs: see ``tfadv.training``.
"""

import os

from absl import flags

from tfadv import cli

cli.define_experiment_flags()
flags.adopt_module_key_flags(cli)
flags.register_multi_flags_validator(
    ["workdir", "print_config", "list_experiments"],
    lambda v: bool(v["workdir"]) or v["print_config"] or v["list_experiments"],
    message="--workdir is required to train (or give --print_config / --list_experiments).")
FLAGS = flags.FLAGS


def main(argv):
    if FLAGS.list_experiments:
        print(cli.experiment_list())
        return
    cfg = cli.resolve_experiment(FLAGS)
    if FLAGS.print_config:
        print(cli.config_json(cfg))
        return
    from tfadv import training

    _, metrics = training.run_experiment(cfg, FLAGS.workdir, verbose=cli.fit_verbosity())
    workdir = os.path.abspath(FLAGS.workdir)
    print(f"metrics: {metrics}")
    print(f"run folder: {workdir} (config.json, metrics.json, the trained model)")
    print(f"image grids: {os.path.join(workdir, 'images')}")
    print(f"TensorBoard: tensorboard --logdir {os.path.join(workdir, 'logs')}")


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
