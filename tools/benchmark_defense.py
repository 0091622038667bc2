"""Benchmark: training cost of each defence, per step, on the same batches (prints a table).

    python tools/benchmark_defense.py [--experiments=A,B,...] [--steps=30] [--batch_size=128] [--record]

Wall time of a whole training run depends on whatever else the machine was
doing; this times ``train_step`` of each named defence experiment (the exact
trainer its config builds: classifier, generator, refine and PGD steps), as one
``tf.function``, on one fixed synthetic batch of the experiment's image shape,
one experiment after the other, after two warm-up steps. The table gives ms per
step, images per second and the cost relative to the first experiment, which is
what "a lower training cost" means in issue #6. Run it on an otherwise idle
machine.

Seconds per epoch = ms per step x the batches of an epoch of --epoch_images (the
recipes train on train[:90%] of Fashion-MNIST: 54,000 images, 422 batches).
--record adds each row as ``training_cost`` to the zoo entry of the experiment's
name (a name with no entry is said and skipped); the artifact is untouched.
"""

import time

from absl import flags

from tfadv import cli

flags.DEFINE_list("experiments", ["fashion_mnist_pgd_defense_linf", "fashion_mnist_fgsm_defense_linf",
                                  "fashion_mnist_trades_defense_linf", "fashion_mnist_joint_defense_linf",
                                  "fashion_mnist_joint_refined_defense_linf", "fashion_mnist_joint_fgsm_defense_linf",
                                  "fashion_mnist_pgd2_defense_linf", "fashion_mnist_pgd3_defense_linf",
                                  "fashion_mnist_joint_pgd2_defense_linf"],
                  "Defence experiments to time (costs are relative to the first).")
flags.DEFINE_integer("steps", 30, "Timed steps per experiment.", lower_bound=1)
flags.DEFINE_integer("batch_size", 128, "Batch size (the experiments' own is 128).", lower_bound=1)
flags.DEFINE_integer("epoch_images", 54000, "Training images per epoch, for seconds per epoch.", lower_bound=1)
flags.DEFINE_bool("record", False, "Add each row as `training_cost` to the zoo entry of the experiment's name.")
FLAGS = flags.FLAGS


def time_experiment(name: str) -> float:
    """Seconds per training step of defence experiment ``name``."""
    import keras
    import tensorflow as tf

    from tfadv import experiments
    from tfadv.data import get_spec
    from tfadv.errors import ConfigError
    from tfadv.tasks import get_task
    from tfadv.tasks.defense import build_defense_trainer

    cfg = experiments.get_experiment(name)
    if cfg.kind != "defense":
        raise ConfigError(f"{name!r} is a {cfg.kind} experiment, not a defence.")
    spec = get_spec(cfg.data.dataset)
    keras.utils.set_random_seed(0)
    trainer = build_defense_trainer(cfg, spec.image_shape, spec.num_classes)
    get_task("defense").compile(trainer, cfg, keras.optimizers.AdamW(1e-3))  # as a training run compiles it
    images = tf.random.stateless_uniform((FLAGS.batch_size,) + tuple(spec.image_shape), (0, 1))
    labels = tf.random.stateless_uniform((FLAGS.batch_size,), (0, 2), 0, spec.num_classes, tf.int32)
    # The step itself, called on one batch already in memory: timing `fit` measured the input pipeline's
    # waiting too, which rounded steps up to powers of two of a millisecond here (255, 511, 1023 ms).
    step = tf.function(trainer.train_step, jit_compile=bool(cfg.runtime.jit_compile))
    for _ in range(2):  # tracing and first-call costs
        _wait(step((images, labels)))
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        logs = step((images, labels))
    _wait(logs)
    return (time.perf_counter() - start) / FLAGS.steps


def _wait(logs) -> None:
    """Blocks until a step's results exist (reads them back)."""
    for value in logs.values():
        value.numpy()


def main(argv):
    import math
    import os
    import sys

    from tfadv import experiments, zoo
    from tfadv.trainers.defense import describe

    print(f"batch {FLAGS.batch_size}, {FLAGS.steps} timed steps each, {os.cpu_count()} CPU cores visible")
    print("| experiment | method | training attack | ms / step | images / s | s / epoch | cost vs first |")
    print("|---|---|---|---|---|---|---|")
    first, rows = None, {}
    batches = math.ceil(FLAGS.epoch_images / FLAGS.batch_size)
    for name in FLAGS.experiments:
        seconds = time_experiment(name)
        first = first or seconds
        method, attack = describe(experiments.get_experiment(name))
        rows[name] = {"method": method, "training_attack": attack, "ms_per_step": round(1000 * seconds, 1),
                      "seconds_per_epoch": round(seconds * batches), "cost_vs": FLAGS.experiments[0],
                      "cost_ratio": round(seconds / first, 3)}
        print(f"| {name} | {method} | {attack} | {1000 * seconds:.0f} | {FLAGS.batch_size / seconds:.0f} | "
              f"{seconds * batches:.0f} | {seconds / first:.2f}x |", flush=True)
    if FLAGS.record:
        settings = {"batch_size": FLAGS.batch_size, "timed_steps": FLAGS.steps, "epoch_images": FLAGS.epoch_images,
                    "cpu_cores": os.cpu_count(), "alone": "one experiment after the other, nothing else running",
                    "command": " ".join(["python tools/benchmark_defense.py"] + sys.argv[1:])}
        for name, row in rows.items():
            if name in zoo.names():
                zoo.add_metrics(name, {"training_cost": {**row, "settings": settings}})
                print(f"recorded training_cost of {name}")
            else:
                print(f"no zoo entry {name}: its row is not recorded")


if __name__ == "__main__":
    cli.run(main)
