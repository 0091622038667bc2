"""Benchmark: style networks' forward time per image and parameter counts (prints a table; not a test).

    python tools/benchmark_style.py [--sizes=256,512] [--repeats=2]

Runs both networks (the seed's Gram-stack network with its default 256/128/64
deconvolution widths, and AdaIN) on batch-1 inputs at each size, with random
VGG weights (speed does not depend on the weights), after one warm-up call.
"""

import time

from absl import flags

from tfadv import cli

flags.DEFINE_list("sizes", ["256", "512"], "Image sides to time.")
flags.DEFINE_integer("repeats", 2, "Timed calls per cell (the mean is printed).", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    import tensorflow as tf

    from tfadv.models.style import adain_network, gram_stack_network

    print(f"devices: {[d.device_type for d in tf.config.list_logical_devices()]}")
    print("| network | size | params (trainable) | params (total) | seconds / image |")
    print("|---|---|---|---|---|")
    for size in map(int, FLAGS.sizes):
        for name, build in (("gram_stack (seed)", gram_stack_network), ("adain", adain_network)):
            net = build(size=size)
            run = tf.function(lambda c, s, net=net: net({"content": c, "style": s}, training=False))
            image = tf.random.uniform((1, size, size, 3))
            run(image, image)
            start = time.perf_counter()
            for _ in range(FLAGS.repeats):
                run(image, image).numpy()
            seconds = (time.perf_counter() - start) / FLAGS.repeats
            trainable = sum(int(tf.size(w)) for w in net.trainable_weights)
            print(f"| {name} | {size} | {trainable:,} | {net.count_params():,} | {seconds:.2f} |")


if __name__ == "__main__":
    cli.run(main)
