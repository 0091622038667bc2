"""Discriminators: the realism critic of the seed's GAN variant (``tfadv.trainers.GANPerturbationTrainer``)."""

import keras


def discriminator(input_shape=(28, 28, 1), filters=32, name="discriminator") -> keras.Model:
    """DCGAN-style discriminator: strided convs with LeakyReLU, one real/fake logit."""
    inputs = keras.Input(input_shape, name="images")
    x = inputs
    for i, width in enumerate((filters, filters * 2, filters * 4)):
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"conv{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"lrelu{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)  # float32 under mixed precision, like logits
    return keras.Model(inputs, logit, name=name)
