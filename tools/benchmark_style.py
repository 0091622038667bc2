"""Benchmark: style networks' forward time per image and parameter counts (prints a table; not a test).

    python tools/benchmark_style.py [--sizes=256,512] [--repeats=2]

Runs both networks (the seed's Gram-stack network with its default 256/128/64
deconvolution widths, and AdaIN) on batch-1 inputs at each size, with random
VGG weights (speed does not depend on the weights), after one warm-up call.
"""

from absl import flags

from tfadv import cli

flags.DEFINE_list("sizes", ["256", "512"], "Image sides to time.")
flags.DEFINE_integer("repeats", 2, "Timed calls per cell (the mean is printed).", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    import tensorflow as tf

    from tfadv import markdown
    from tfadv.benchmarks import style

    print(f"devices: {[d.device_type for d in tf.config.list_logical_devices()]}")
    for line in markdown.table_lines(style.HEADER, style.rows(map(int, FLAGS.sizes), FLAGS.repeats)):
        print(line)


if __name__ == "__main__":
    cli.run(main)
