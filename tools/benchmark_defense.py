"""Benchmark: training cost of each defense, per step, on the same batches (prints a table).

    python tools/benchmark_defense.py [--experiments=A,B,...] [--steps=30] [--batch_size=128] [--record]

Wall time of a whole training run depends on whatever else the machine was
doing; this times ``train_step`` of each named defense experiment (the exact
trainer its config builds: classifier, generator, refine and PGD steps), as one
``tf.function``, on one fixed synthetic batch of the experiment's image shape,
after two warm-up steps, in --rounds rounds that each time every experiment in
turn for its share of --steps. The table gives ms per step, images per second
and the cost relative to the first experiment (the median over rounds of the
two in the same round, so the machine's drift between rounds cancels), which is
what "a lower training cost" means for a defense. Run it on an otherwise idle
machine.

Seconds per epoch = ms per step x the batches of an epoch of --epoch_images (the
recipes train on train[:90%] of Fashion-MNIST: 54,000 images, 422 batches).
--record adds each row as ``training_cost`` to the zoo entry of the experiment's
name (a name with no entry is said and skipped); the artifact is untouched.
"""

from absl import flags

from tfadv import cli

flags.DEFINE_list("experiments", ["fashion_mnist_pgd_defense_linf", "fashion_mnist_madry_pgd_defense_linf",
                                  "fashion_mnist_fgsm_defense_linf",
                                  "fashion_mnist_trades_defense_linf", "fashion_mnist_joint_defense_linf",
                                  "fashion_mnist_joint_refined_defense_linf", "fashion_mnist_joint_fgsm_defense_linf",
                                  "fashion_mnist_pgd2_defense_linf", "fashion_mnist_pgd3_defense_linf",
                                  "fashion_mnist_joint_pgd2_defense_linf"],
                  "Defense experiments to time (costs are relative to the first).")
flags.DEFINE_integer("steps", 30, "Timed steps per experiment, over all rounds.", lower_bound=1)
flags.DEFINE_integer("rounds", 3, "Rounds, each timing every experiment in turn (at most --steps).", lower_bound=1)
flags.DEFINE_integer("batch_size", 128, "Batch size (the experiments' own is 128).", lower_bound=1)
flags.DEFINE_integer("epoch_images", 54000, "Training images per epoch, for seconds per epoch.", lower_bound=1)
flags.DEFINE_bool("record", False, "Add each row as `training_cost` to the zoo entry of the experiment's name.")
FLAGS = flags.FLAGS


def main(argv):
    import os
    import sys

    from tfadv.benchmarks import defense

    print(f"batch {FLAGS.batch_size}, {FLAGS.steps} timed steps each in {FLAGS.rounds} rounds, {os.cpu_count()} CPU "
          f"cores visible")
    costs = defense.benchmark(FLAGS.experiments, batch_size=FLAGS.batch_size, steps=FLAGS.steps,
                              epoch_images=FLAGS.epoch_images, rounds=FLAGS.rounds,
                              log=lambda line: print(line, flush=True))
    if FLAGS.record:
        settings = {"batch_size": FLAGS.batch_size, "timed_steps": FLAGS.steps, "rounds": FLAGS.rounds,
                    "epoch_images": FLAGS.epoch_images, "cpu_cores": os.cpu_count(),
                    "alone": "every experiment in turn in each round, nothing else running",
                    "command": " ".join(["python tools/benchmark_defense.py"] + sys.argv[1:])}
        defense.record(costs, settings)


if __name__ == "__main__":
    cli.run(main)
