"""Keras models that hold other Keras models as constructor arguments (trainers, universal perturbations).

Their ``get_config`` stores each inner model serialized under its argument
name; :class:`NestedModels` supplies the matching ``from_config``, so every
such class rebuilds its inner models the same way. It also keeps their image
boundary float32 under mixed precision (see :class:`NestedModels`).
"""

import keras


class NestedModels:
    """Mixin (before ``keras.Model``): ``from_config`` deserializes the arguments named in ``NESTED_MODELS``.

    These wrappers take images in [0, 1] and keep them float32 (``input_dtype``). Under a global
    ``mixed_float16`` policy Keras would otherwise cast their input images to float16 before the inner models
    see them: x moves by float16 rounding (up to 2.4e-4 near 1.0), so an x_hat built on it breaks the budget
    measured against the real x, and a float32 SavedModel target refuses the input. Their dtype policy stays
    the global one, so ``compile`` still wraps the optimizer in a ``LossScaleOptimizer``, and the inner
    networks compute in float16.
    """

    NESTED_MODELS: tuple[str, ...] = ()

    @property
    def input_dtype(self):
        """The dtype Keras converts call arguments to: float32 images, whatever the compute dtype."""
        return "float32"

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.NESTED_MODELS:
            if key in config:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
