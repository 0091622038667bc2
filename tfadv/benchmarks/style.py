"""The style networks' forward time per image and parameter counts (``tools/benchmark_style.py``).

    for line in markdown.table_lines(HEADER, rows(sizes=(256, 512), repeats=2)):
        print(line)

Both networks (the seed's Gram-stack network with its default 256/128/64 deconvolution widths, and AdaIN) run on
batch-1 inputs at each size, with random VGG weights (speed does not depend on the weights), after one warm-up
call.
"""

HEADER = ("network", "size", "params (trainable)", "params (total)", "seconds / image")


def rows(sizes, repeats: int):
    """One table row (``HEADER``) per (size, network), each measured as it is asked for: the mean seconds of
    ``repeats`` timed calls."""
    import tensorflow as tf

    from tfadv.models.style import adain_network, gram_stack_network
    from tfadv.timing import timed_calls

    for size in sizes:
        for name, build in (("gram_stack (seed)", gram_stack_network), ("adain", adain_network)):
            net = build(size=size)
            run = tf.function(lambda c, s, net=net: net({"content": c, "style": s}, training=False))
            image = tf.random.uniform((1, size, size, 3))
            seconds, _ = timed_calls(lambda c, s: run(c, s).numpy(), [(image, image)] * repeats)
            trainable = sum(int(tf.size(w)) for w in net.trainable_weights)
            yield name, size, f"{trainable:,}", f"{net.count_params():,}", f"{seconds:.2f}"
