"""Training generators that transfer: fooling classifiers they never see (GAP, CDA and LTP's recipes).

``TransferPerturbationTrainer`` is :class:`~tfadv.trainers.PerturbationTrainer` with the two things the
transfer literature adds to a generator's training:

* **input diversity** (Xie et al. 2019, used in training by the transfer generators that followed): with
  probability ``input_diversity`` a step shows the surrogate its images resized and padded at a random place
  (:func:`tfadv.transfer_attacks.input_diversity`), so the generator cannot rely on one model's exact pixel
  grid;
* **LTP's mid-layer feature separation** (Salzmann et al. 2021, "Learning Transferable Adversarial
  Perturbations"; ``loss="feature_separation"``): the generator pushes a middle layer's features of x_hat away
  from those of x, ``-||f(x_hat) - f(x)||^2 / ||f(x)||^2`` per example, summed over the surrogates' taps
  (normalised per tap, so one surrogate's scale does not drown another's). Middle layers are shared more
  across architectures than logits are, which is LTP's argument.

The logits losses (``untargeted``, GAP's ``least_likely``, CDA's ``relativistic_ce``, ...) come from
:mod:`tfadv.losses` as for any perturbation trainer; the classifier may be a
:class:`tfadv.targets.Ensemble` of surrogates. The reported metrics are on the generator's undiversified
images in evaluation; during training they are measured on what the surrogate saw.
"""

import keras
import tensorflow as tf

from tfadv.errors import ConfigError
from tfadv.losses import FEATURE_SEPARATION, adversarial_loss
from tfadv.trainers.perturbation import PerturbationTrainer
from tfadv.transfer_attacks import input_diversity


@keras.saving.register_keras_serializable(package="tfadv")
class TransferPerturbationTrainer(PerturbationTrainer):
    """Trains ``attacker`` against the frozen (ensemble) ``classifier`` for transfer.

    Args:
        taps: for ``loss="feature_separation"``, a frozen Keras model x -> [the classifier's logits, then the
            surrogates' mid-layer features] (one pass: :func:`tfadv.tasks.keras_form.surrogate_taps`); None
            otherwise.
        input_diversity: probability that a training step's surrogate inputs are resized and padded (0: never).
        diversity_seed: seed of the diversity draws (stateless, folded with the optimizer's step).
        Other arguments: :class:`~tfadv.trainers.PerturbationTrainer`'s (``magnitude_weight`` must be 0: the
        transfer generators train under a norm budget).
    """

    NESTED_MODELS = PerturbationTrainer.NESTED_MODELS + ("taps",)

    def __init__(self, attacker, classifier, taps=None, input_diversity=0.0, diversity_seed=0,
                 loss="untargeted", **kwargs):
        if loss == FEATURE_SEPARATION and taps is None:
            raise ConfigError("loss='feature_separation' needs taps: the surrogates' mid-layer features.")
        if not 0.0 <= input_diversity <= 1.0:
            raise ConfigError(f"input_diversity must be a probability in [0, 1]. Received: {input_diversity!r}")
        feature_loss = loss == FEATURE_SEPARATION
        # The base class checks logits losses; its metrics and test step are the same for LTP.
        super().__init__(attacker, classifier, loss="untargeted" if feature_loss else loss, **kwargs)
        self.loss_kind, self.feature_loss = loss, feature_loss
        if self.magnitude_weight:
            raise ConfigError("A transfer generator trains under a norm budget: magnitude_weight must be 0.")
        if taps is not None:
            taps.trainable = False
        self.taps, self.input_diversity, self.diversity_seed = taps, float(input_diversity), int(diversity_seed)

    def _diverse(self, x, x_hat):
        """(x, x_hat) as the surrogate sees them this step: one random resize-and-pad for both, or unchanged."""
        if not self.input_diversity:
            return x, x_hat
        key = tf.stack([tf.constant(self.diversity_seed, tf.int32), tf.cast(self.optimizer.iterations, tf.int32)])
        both = input_diversity(tf.concat([x, x_hat], 0), key, self.input_diversity)
        return tf.split(both, 2)

    def training_loss(self, x, x_hat, labels, clean_logits):
        """(loss, logits of what the surrogate saw): the configured loss on diversified inputs."""
        x_seen, x_hat_seen = self._diverse(x, x_hat)
        if self.feature_loss:
            return self._feature_separation(x_seen, x_hat_seen)
        logits = self.classifier(x_hat_seen, training=False)
        if self.input_diversity:  # relative losses compare like with like: the clean logits as seen
            clean_logits = self.classifier(x_seen, training=False)
        per_example = adversarial_loss(self.loss_kind, logits, labels, clean_logits, self.target_class,
                                       settings=self.loss_settings)
        return tf.reduce_mean(per_example), logits

    def generator_loss(self, x, x_hat, labels, clean_logits):
        """The evaluation loss: the configured loss on the undiversified images."""
        if self.feature_loss:
            return self._feature_separation(x, x_hat)
        return super().generator_loss(x, x_hat, labels, clean_logits)

    def _feature_separation(self, x, x_hat):
        """(LTP's loss, the surrogate's logits on x_hat): ``-||f(x_hat) - f(x)||^2 / ||f(x)||^2`` per tap, summed."""
        logits, *adversarial_features = self.taps(x_hat, training=False)
        clean_features = self.taps(x, training=False)[1:]
        per_example = 0.0
        for clean, adversarial in zip(clean_features, adversarial_features):
            axes = list(range(1, len(clean.shape)))
            scale = tf.stop_gradient(tf.reduce_mean(tf.square(clean), axes)) + 1e-12
            per_example -= tf.reduce_mean(tf.square(adversarial - clean), axes) / scale
        return tf.reduce_mean(per_example), logits

    def get_config(self):
        config = super().get_config()
        config.update(loss=self.loss_kind, input_diversity=self.input_diversity,
                      diversity_seed=self.diversity_seed,
                      taps=keras.saving.serialize_keras_object(self.taps) if self.taps is not None else None)
        return config

