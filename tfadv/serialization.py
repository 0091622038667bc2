"""Saving Keras models that hold other Keras models as constructor arguments (trainers, universal perturbations).

Their ``get_config`` stores each inner model serialized under its argument
name; :class:`NestedModels` supplies the matching ``from_config``, so every
such class rebuilds its inner models the same way.
"""

import keras


class NestedModels:
    """Mixin (before ``keras.Model``): ``from_config`` deserializes the arguments named in ``NESTED_MODELS``."""

    NESTED_MODELS: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.NESTED_MODELS:
            if key in config:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
