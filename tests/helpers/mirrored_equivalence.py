"""Trains every trainer for a few SGD steps on one device and under MirroredStrategy over 2 logical CPUs.

Run as a script (the logical devices must be configured before TensorFlow
starts): prints one JSON line {trainer: {"max_weight_diff": .., "one": logs, "mirrored": logs}}.
SGD, not Adam: Adam is invariant to a gradient scale, so it would hide a loss
not divided by the number of replicas. The models have no batch norm, whose
per-replica statistics legitimately differ from the global batch's.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfadv.models import discriminator, perturbation_model, unet  # noqa: E402
from tfadv.trainers import GANPerturbationTrainer, PerturbationTrainer  # noqa: E402
from tfadv.trainers.defense import CoTrainedTrainer, PGDAdversarialTrainer  # noqa: E402

SHAPE = (16, 16, 1)


def classifier():
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def attacker():
    return perturbation_model(unet(SHAPE, depth=1, filters=4, batch_norm=False), "thresholded", "linf", 0.1)


BUILDERS = {
    "perturbation": lambda: (PerturbationTrainer(attacker(), classifier(), loss="untargeted"), {}),
    "gan": lambda: (GANPerturbationTrainer(attacker(), classifier(), discriminator(SHAPE, filters=4)),
                    {"d_optimizer": keras.optimizers.SGD(0.05)}),
    "co_trained_defense": lambda: (CoTrainedTrainer(classifier(), attacker()),
                                   {"g_optimizer": keras.optimizers.SGD(0.05)}),
    "pgd_defense": lambda: (PGDAdversarialTrainer(classifier(), "linf", 0.1, steps=2, random_start=False), {}),
}


def train(name, strategy, initial):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        trainer, extra = BUILDERS[name]()
        trainer(tf.zeros((1,) + SHAPE))
        trainer.set_weights(initial) if initial is not None else None
        trainer.compile(optimizer=keras.optimizers.SGD(0.05), **extra)
    start = [w.copy() for w in trainer.get_weights()]
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64,) + SHAPE).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) * 20).astype("int32") % 10
    history = trainer.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=1, verbose=0, shuffle=False)
    return start, trainer.get_weights(), {k: float(v[-1]) for k, v in history.history.items()}


def main():
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    out = {}
    for name in sys.argv[1:] or BUILDERS:
        start, one, one_logs = train(name, tf.distribute.get_strategy(), None)
        _, two, two_logs = train(name, mirrored, start)
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(start, one))
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(one, two))
        out[name] = {"max_weight_diff": diff, "max_weight_change": moved, "one": one_logs, "mirrored": two_logs}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
