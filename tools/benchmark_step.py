"""Benchmark: training-step throughput of an ImageNet-size generator attack, by precision and XLA (prints a table).

    python tools/benchmark_step.py [--size=224] [--batch_size=32] [--steps=20] [--strategy=default]

The step timed is ``PerturbationTrainer.train_step`` (the thresholded L-inf
10/255 attack of ``imagenet_unet_linf``): a ResNet generator forward and
backward pass through a frozen VGG16 target (random weights: speed does not
depend on them). One row per (mixed_float16?, jit_compile?) combination:
images per second over ``--steps`` steps after two warm-up steps. Meant for
GPUs (mixed precision needs tensor cores to pay off; on a CPU it is slower
and XLA is too, see BUILD.md); on this project's 2-core CPU use --size=64
--batch_size=4 --steps=2 to check that every combination runs.
"""

import time

from absl import flags

from tfadv import cli

flags.DEFINE_integer("size", 224, "Image side.", lower_bound=32)
flags.DEFINE_integer("batch_size", 32, "Global batch size.", lower_bound=1)
flags.DEFINE_integer("steps", 20, "Timed steps per row.", lower_bound=1)
flags.DEFINE_enum("strategy", "default", list(cli.STRATEGIES), "tf.distribute strategy (tfadv.distribute).")
flags.DEFINE_list("precisions", ["float32", "mixed_float16"], "Rows to run: float32 and/or mixed_float16.")
flags.DEFINE_list("jit", ["false", "true"], "Rows to run: jit_compile false and/or true.")
FLAGS = flags.FLAGS


def time_row(mixed: bool, jit: bool) -> tuple[float, str]:
    import keras
    import tensorflow as tf

    from tfadv import distribute
    from tfadv.models import build_classifier, build_generator, perturbation_model
    from tfadv.trainers import PerturbationTrainer

    distribute.set_precision(mixed)
    try:
        strategy = distribute.make_strategy(FLAGS.strategy)
        shape = (FLAGS.size, FLAGS.size, 3)
        with strategy.scope():
            generator = build_generator("resnet_generator", input_shape=shape, filters=32, blocks=6)
            target = build_classifier("vgg16", input_shape=shape, num_classes=1000, weights=None)
            trainer = PerturbationTrainer(perturbation_model(generator, "thresholded", "linf", 10 / 255), target,
                                          loss="least_likely")
            trainer(tf.zeros((1,) + shape))
            trainer.compile(optimizer=keras.optimizers.Adam(2e-4), jit_compile=jit)
        images = tf.random.uniform((FLAGS.batch_size,) + shape)
        labels = tf.zeros((FLAGS.batch_size,), tf.int32)
        data = tf.data.Dataset.from_tensors((images, labels)).repeat()
        warm_up = distribute.ready_to_fit(trainer)  # two steps: tracing and first-call costs
        warm_up.fit(data, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
        start = time.perf_counter()
        trainer.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0, shuffle=False)
        seconds = time.perf_counter() - start
        return FLAGS.batch_size * FLAGS.steps / seconds, type(trainer.optimizer).__name__
    finally:
        distribute.set_precision(False)


def main(argv):
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    print(f"devices: {[d.name for d in tf.config.list_logical_devices()]}; strategy: {FLAGS.strategy}")
    print(f"size {FLAGS.size}, global batch {FLAGS.batch_size}, {FLAGS.steps} timed steps"
          + ("" if gpus else " (no GPU: CPU figures)"))
    print("| precision | jit_compile | optimizer | images / s |")
    print("|---|---|---|---|")
    for precision in FLAGS.precisions:
        for jit in (value.lower() == "true" for value in FLAGS.jit):
            rate, optimizer = time_row(precision == "mixed_float16", jit)
            print(f"| {precision} | {jit} | {optimizer} | {rate:.1f} |", flush=True)


if __name__ == "__main__":
    cli.run(main)
