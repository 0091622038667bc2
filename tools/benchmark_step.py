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

from absl import flags

from tfadv import cli

flags.DEFINE_integer("size", 224, "Image side.", lower_bound=32)
flags.DEFINE_integer("batch_size", 32, "Global batch size.", lower_bound=1)
flags.DEFINE_integer("steps", 20, "Timed steps per row.", lower_bound=1)
flags.DEFINE_enum("strategy", "default", list(cli.STRATEGIES), "tf.distribute strategy (tfadv.distribute).")
flags.DEFINE_list("precisions", ["float32", "mixed_float16"], "Rows to run: float32 and/or mixed_float16.")
flags.DEFINE_list("jit", ["false", "true"], "Rows to run: jit_compile false and/or true.")
FLAGS = flags.FLAGS


def main(argv):
    import tensorflow as tf

    from tfadv import markdown
    from tfadv.benchmarks import step

    gpus = tf.config.list_logical_devices("GPU")
    print(f"devices: {[d.name for d in tf.config.list_logical_devices()]}; strategy: {FLAGS.strategy}")
    print(f"size {FLAGS.size}, global batch {FLAGS.batch_size}, {FLAGS.steps} timed steps"
          + ("" if gpus else " (no GPU: CPU figures)"))
    rows = step.rows(FLAGS.precisions, [value.lower() == "true" for value in FLAGS.jit], size=FLAGS.size,
                     batch_size=FLAGS.batch_size, steps=FLAGS.steps, strategy=FLAGS.strategy)
    for line in markdown.table_lines(step.HEADER, rows):
        print(line, flush=True)


if __name__ == "__main__":
    cli.run(main)
