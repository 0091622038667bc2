"""Universal perturbations: one perturbation U for every image, from a generator fed fixed noise.

The seed's construction: a U-Net maps one fixed uniform-noise image z to a
perturbation; thresholded (scaled) to the budget, it is added to every image:
``x_hat = clip(x + U, 0, 1)``. Training changes the generator's weights, never
z. z is a non-trainable weight of the model, drawn from ``noise_seed``: it is
saved with the model, and the same seed draws the same z, so runs reproduce.

``UniversalPerturbation`` is an x -> x_hat model like the per-image ones, so
the same :class:`tfadv.trainers.PerturbationTrainer` trains it and the same
export serves it; ``perturbation()`` returns U itself.
"""

import keras
import tensorflow as tf

from tfadv.budgets import bounded_perturbation, check_budget, constrain
from tfadv.serialization import NestedModels


@keras.saving.register_keras_serializable(package="tfadv")
class UniversalPerturbation(NestedModels, keras.Model):
    """x -> clip(x + U, 0, 1) with U = budget(generator(z)) for a fixed noise image z.

    Args:
        generator: functional model from [1, H, W, C] noise to a same-sized tanh output.
        norm, eps: the budget U is scaled to ("l2" or "linf").
        noise_seed: seed of the uniform [0, 1) noise image z.
    """

    NESTED_MODELS = ("generator",)

    def __init__(self, generator, norm="l2", eps=2.5, noise_seed=0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.norm, self.eps, self.noise_seed = norm, check_budget(norm, eps), int(noise_seed)
        shape = (1,) + tuple(generator.input_shape[1:])
        self.noise = self.add_weight(
            name="noise", shape=shape, trainable=False,
            initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=self.noise_seed))

    def perturbation(self, training=False):
        """U: [1, H, W, C] with ``||U||_norm = eps`` (up to the budget's safety margin)."""
        return constrain(self.generator(self.noise, training=training), self.norm, self.eps, "scale")

    def call(self, images, training=False):
        u = self.perturbation(training)
        return bounded_perturbation(images, tf.broadcast_to(u, tf.shape(images)), self.norm, self.eps,
                                    mode="project")

    def get_config(self):
        return {**super().get_config(), "generator": keras.saving.serialize_keras_object(self.generator),
                "norm": self.norm, "eps": self.eps, "noise_seed": self.noise_seed}
