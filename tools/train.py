"""Trains an experiment: ``tfadv-train --experiment=fashion_mnist_cnn --workdir=runs/fmnist``.

Rerunning the same command after a kill resumes from the last backup in
WORKDIR/backup. Outputs: see ``tfadv.training``.
"""

import os

from absl import flags

from tfadv import cli

cli.define_experiment_flags()
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import training

    cfg = cli.resolve_experiment(FLAGS)
    _, metrics = training.run_experiment(cfg, FLAGS.workdir)
    workdir = os.path.abspath(FLAGS.workdir)
    print(f"metrics: {metrics}")
    print(f"run folder: {workdir} (config.json, metrics.json, the trained model)")
    print(f"image grids: {os.path.join(workdir, 'images')}")
    print(f"TensorBoard: tensorboard --logdir {os.path.join(workdir, 'logs')}")


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
