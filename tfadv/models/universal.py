"""Universal perturbations: one perturbation U for every image, from a generator fed fixed noise.

The seed's construction: a U-Net maps one fixed uniform-noise image z to a
perturbation; thresholded (scaled) to the budget, it is added to every image:
``x_hat = clip(x + U, 0, 1)``. Training changes the generator's weights, never
z. z is a non-trainable weight of the model, drawn from ``noise_seed``: it is
saved with the model, and the same seed draws the same z, so runs reproduce.

``UniversalPerturbation`` is an x -> x_hat model like the per-image ones, so
the same :class:`tfadv.trainers.PerturbationTrainer` trains it and the same
export serves it; ``perturbation()`` returns U itself.

L-inf budgets (``linf_map``): scaling the tanh output g so that max|U| = eps
("threshold", the budget rule; the first entries) makes every pixel reach eps
only where tanh saturates, and a saturated tanh passes no gradient: U froze within an epoch
(the same validation accuracy, 38.2%, after epochs 1 and 2).
"straight_through" (the default of new models) normalises g by its mean
|g|, clips to [-1, 1] and scales by eps, passing the gradient through the
clip unchanged: U can be an eps-sign pattern while the generator stays in its
linear range, and a clipped pixel can still turn back. Models saved before
the option existed load with "threshold", so they compute what they computed
(models saved before the rename call it "scale": they read as "threshold").
"""

import keras
import tensorflow as tf

from tfadv.budgets import RENAMED_RULES, bounded_perturbation, check_budget, constrain
from tfadv.errors import ConfigError
from tfadv.serialization import NestedModels


@keras.saving.register_keras_serializable(package="tfadv")
class UniversalPerturbation(NestedModels, keras.Model):
    """x -> clip(x + U, 0, 1) with U = budget(generator(z)) for a fixed noise image z.

    Args:
        generator: functional model from [1, H, W, C] noise to a same-sized tanh output.
        norm, eps: the budget U is scaled to ("l2" or "linf").
        noise_seed: seed of the uniform [0, 1) noise image z.
        linf_map: for L-inf, "straight_through" or "threshold" (see the module doc); L2 always thresholds.
    """

    LINF_MAPS = ("straight_through", "threshold")

    NESTED_MODELS = ("generator",)

    def __init__(self, generator, norm="l2", eps=2.5, noise_seed=0, linf_map="straight_through", **kwargs):
        super().__init__(**kwargs)
        if linf_map not in self.LINF_MAPS:
            raise ConfigError(f"linf_map must be one of {self.LINF_MAPS}. Received: linf_map={linf_map!r}")
        self.linf_map = linf_map
        self.generator = generator
        self.norm, self.eps, self.noise_seed = norm, check_budget(norm, eps), int(noise_seed)
        shape = (1,) + tuple(generator.input_shape[1:])
        self.noise = self.add_weight(
            name="noise", shape=shape, trainable=False,
            initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=self.noise_seed))

    def perturbation(self, training=False):
        """U: [1, H, W, C] with ``||U||_norm = eps`` (up to the budget's safety margin)."""
        raw = self.generator(self.noise, training=training)
        if self.norm == "linf" and self.linf_map == "straight_through":
            # mean |r| = 1, so some |r| >= 1 and the clipped r peaks at exactly 1: "threshold" then multiplies by eps
            r = raw / (tf.reduce_mean(tf.abs(raw)) + 1e-12)
            raw = r + tf.stop_gradient(tf.clip_by_value(r, -1.0, 1.0) - r)
        return constrain(raw, self.norm, self.eps, "threshold")

    def call(self, images, training=False):
        u = self.perturbation(training)
        return bounded_perturbation(images, tf.broadcast_to(u, tf.shape(images)), self.norm, self.eps,
                                    rule="project")

    def get_config(self):
        return {**super().get_config(), "generator": keras.saving.serialize_keras_object(self.generator),
                "norm": self.norm, "eps": self.eps, "noise_seed": self.noise_seed, "linf_map": self.linf_map}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        linf_map = config.get("linf_map", "threshold")  # saved before the option: the map it was trained with
        config["linf_map"] = RENAMED_RULES.get(linf_map, linf_map)  # saved before the rename: "scale"
        return super().from_config(config)
