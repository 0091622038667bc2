"""Training-step throughput of an ImageNet-size generator attack, by precision and XLA (``tools/benchmark_step.py``).

    images_per_s, optimizer = images_per_second(mixed=True, jit=True, size=224, batch_size=32, steps=20)
    markdown.table_lines(HEADER, rows(["float32", "mixed_float16"], [False, True], size=224, batch_size=32, steps=20))

The step is ``PerturbationTrainer.train_step`` of the thresholded L-inf 10/255 attack of ``imagenet_unet_linf``:
a ResNet generator's forward and backward pass through a frozen VGG16 target (random weights: speed does not
depend on them), timed as one ``fit`` of ``steps`` steps after a two-step ``fit`` that pays tracing and first
calls. Meant for GPUs (mixed precision needs tensor cores to pay off).
"""

import time

HEADER = ("precision", "jit_compile", "optimizer", "images / s")


def images_per_second(mixed: bool, jit: bool, *, size: int, batch_size: int, steps: int,
                      strategy: str = "default") -> tuple[float, str]:
    """(images per second, the optimizer's class name: a LossScaleOptimizer under mixed precision) of the step
    at ``size`` px, global batch ``batch_size``, under tf.distribute ``strategy`` (tfadv.distribute)."""
    import keras
    import tensorflow as tf

    from tfadv import distribute
    from tfadv.models import build_classifier, build_generator, perturbation_model
    from tfadv.trainers import PerturbationTrainer

    distribute.set_precision(mixed)
    try:
        with distribute.make_strategy(strategy).scope():
            shape = (size, size, 3)
            generator = build_generator("resnet_generator", input_shape=shape, filters=32, blocks=6)
            target = build_classifier("vgg16", input_shape=shape, num_classes=1000, weights=None)
            trainer = PerturbationTrainer(perturbation_model(generator, "thresholded", "linf", 10 / 255), target,
                                          loss="least_likely")
            trainer(tf.zeros((1,) + shape))
            trainer.compile(optimizer=keras.optimizers.Adam(2e-4), jit_compile=jit)
        images = tf.random.uniform((batch_size,) + shape)
        labels = tf.zeros((batch_size,), tf.int32)
        data = tf.data.Dataset.from_tensors((images, labels)).repeat()
        warm_up = distribute.ready_to_fit(trainer)  # two steps: tracing and first-call costs
        warm_up.fit(data, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
        start = time.perf_counter()  # one fit over the steps: fit's own loop is what is timed
        trainer.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        seconds = time.perf_counter() - start
        return batch_size * steps / seconds, type(trainer.optimizer).__name__
    finally:
        distribute.set_precision(False)


def rows(precisions, jits, **settings):
    """One table row (``HEADER``) per (precision, jit_compile) combination, each measured as it is asked for;
    ``settings``: :func:`images_per_second`'s."""
    for precision in precisions:
        for jit in jits:
            rate, optimizer = images_per_second(precision == "mixed_float16", jit, **settings)
            yield precision, jit, optimizer, f"{rate:.1f}"

