"""Keras models that hold other Keras models as constructor arguments (trainers, universal perturbations).

Their ``get_config`` stores each inner model serialized under its argument
name; :class:`NestedModels` supplies the matching ``from_config``, so every
such class rebuilds its inner models the same way. It also keeps their image
boundary float32 under mixed precision (see :class:`NestedModels`).
"""

import keras


class NestedModels:
    """Mixin (before ``keras.Model``): ``from_config`` deserializes the arguments named in ``NESTED_MODELS``.

    These wrappers take images in [0, 1] and default to the ``float32`` dtype policy. Under a global
    ``mixed_float16`` policy Keras would otherwise cast their input images to float16 before the inner models
    see them: x moves by float16 rounding (up to 2.4e-4 near 1.0), so an x_hat built on it breaks the budget
    measured against the real x, and a float32 SavedModel target refuses the input. The inner networks keep
    their own (mixed) policies and compute in float16.
    """

    NESTED_MODELS: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(*args, **kwargs)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.NESTED_MODELS:
            if key in config:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
