"""A second optimizer for two-player trainers (generator vs discriminator, classifier vs generator).

Keras' ``compile`` knows one optimizer. This mixin adds a second one, named by
``SECOND_OPTIMIZER`` (e.g. ``d_optimizer``), to ``compile``, and saves and
restores it with the model: ``get_compile_config`` records it and
``compile_from_config`` rebuilds both optimizers on their own variables, so
``load_model`` restores both states (KERAS3-NOTES gotcha 3).
"""

import keras

from tfadv.distribute import loss_scale_wrapped
from tfadv.errors import ConfigError


class SecondOptimizerMixin:
    """Mixed into a ``keras.Model`` subclass that defines ``SECOND_OPTIMIZER`` and the two variable lists."""

    SECOND_OPTIMIZER = "second_optimizer"

    def first_player_variables(self):
        """Variables the main ``optimizer`` updates."""
        raise NotImplementedError

    def second_player_variables(self):
        """Variables the second optimizer updates."""
        raise NotImplementedError

    def compile(self, optimizer=None, **kwargs):
        second = kwargs.pop(self.SECOND_OPTIMIZER, None)
        if optimizer is None or second is None:
            raise ConfigError(f"{type(self).__name__}.compile needs optimizer= and {self.SECOND_OPTIMIZER}=.")
        super().compile(optimizer=optimizer, **kwargs)
        setattr(self, self.SECOND_OPTIMIZER, loss_scale_wrapped(second))
        if self.built:
            self.build_optimizers()

    def build_optimizers(self):
        """Builds each optimizer on its own player's variables.

        Done at ``compile`` when the trainer is built: otherwise ``fit`` builds
        the main optimizer on *all* trainable variables (both players), a
        different layout from the one ``load_model`` rebuilds, and Keras then
        skips restoring that optimizer's state.
        """
        if not self.optimizer.built:
            self.optimizer.build(self.first_player_variables())
        second = getattr(self, self.SECOND_OPTIMIZER)
        if not second.built:
            second.build(self.second_player_variables())

    def get_compile_config(self):
        config = super().get_compile_config() or {}
        config[self.SECOND_OPTIMIZER] = keras.saving.serialize_keras_object(getattr(self, self.SECOND_OPTIMIZER))
        return config

    def compile_from_config(self, config):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(config.pop("optimizer"))
        second = keras.saving.deserialize_keras_object(config.pop(self.SECOND_OPTIMIZER))
        self.compile(optimizer=optimizer, **{self.SECOND_OPTIMIZER: second})  # builds both if the model is built
