"""Training a target classifier with a tfadv ``train_step``: label-smoothed cross-entropy and top-1 accuracy.

Keras' built-in ``compile(loss=, metrics=)`` path would do the same on one
device, but its step logs cannot be reduced under MultiWorkerMirroredStrategy
(keras-team/keras#20585); this step returns :func:`tfadv.distribute.synced_results`,
so the classifier trains under every strategy like the other trainers.
"""

import keras
import tensorflow as tf

from tfadv.distribute import minimize, synced_results
from tfadv.errors import ConfigError
from tfadv.serialization import NestedModels


@keras.saving.register_keras_serializable(package="tfadv")
class ClassifierTrainer(NestedModels, keras.Model):
    """Trains ``classifier`` ([0, 1] images -> logits) on (images, int labels) batches.

    Args:
        classifier: the Keras model trained (what the zoo exports).
        label_smoothing: in [0, 1), the usual smoothing of the one-hot targets.
    """

    NESTED_MODELS = ("classifier",)

    def __init__(self, classifier, label_smoothing=0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1). Received: {label_smoothing!r}")
        self.classifier, self.label_smoothing = classifier, float(label_smoothing)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")

    def call(self, images, training=False):
        return self.classifier(images, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def _loss(self, labels, logits):
        targets = tf.one_hot(tf.cast(labels, tf.int32), tf.shape(logits)[-1])
        return tf.reduce_mean(keras.losses.categorical_crossentropy(
            targets, logits, from_logits=True, label_smoothing=self.label_smoothing))

    def _update(self, loss, labels, logits):
        self.loss_tracker.update_state(loss)
        correct = tf.argmax(logits, -1, output_type=tf.int32) == tf.cast(labels, tf.int32)
        self.accuracy_tracker.update_state(tf.cast(correct, tf.float32))
        return synced_results(self.metrics)

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            logits = self.classifier(images, training=True)
            loss = self._loss(labels, logits) + sum(self.classifier.losses)
        minimize(self.optimizer, tape, loss, self.classifier.trainable_variables)
        return self._update(loss, labels, logits)

    def test_step(self, data):
        images, labels = data
        logits = self.classifier(images, training=False)
        return self._update(self._loss(labels, logits), labels, logits)

    def get_config(self):
        return {**super().get_config(), "classifier": keras.saving.serialize_keras_object(self.classifier),
                "label_smoothing": self.label_smoothing}
