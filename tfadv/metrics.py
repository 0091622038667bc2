"""Attack metrics shown by ``fit`` / ``evaluate`` and written to the zoo registry."""

import keras
import tensorflow as tf

from tfadv.budgets import per_example_norm
from tfadv.distribute import replica_max


@keras.saving.register_keras_serializable(package="tfadv")
class MaxMetric(keras.metrics.Metric):
    """Running maximum of the values seen since the last reset (e.g. the largest perturbation norm)."""

    def __init__(self, name="max", **kwargs):
        super().__init__(name=name, **kwargs)
        # Under tf.distribute every replica holds the global running max (see update_state), so "mean" reads it.
        self.value = self.add_variable(shape=(), initializer="zeros", aggregation="mean", name="value")

    def update_state(self, values, sample_weight=None):
        values = tf.reshape(tf.cast(values, self.dtype), [-1])
        values = tf.concat([values, tf.zeros([1], self.dtype)], 0)  # an empty batch leaves the max as is
        self.value.assign(tf.maximum(self.value, replica_max(tf.reduce_max(values))))

    def result(self):
        return tf.identity(self.value)

    def reset_state(self):
        self.value.assign(0.0)


class AttackMetrics:
    """The set of trackers an attack trainer reports, updated from one batch at a time.

    Reported: adv_accuracy (classifier on x_hat vs true labels), clean_accuracy,
    fooling_rate (prediction changed from the clean one), l2_mean / l2_max and
    linf_mean / linf_max of ``x_hat - x``, and target_success for targeted runs.
    """

    def __init__(self, targeted: bool):
        names = ["adv_accuracy", "clean_accuracy", "fooling_rate", "l2_mean", "linf_mean"]
        if targeted:
            names.append("target_success")
        self.means = {n: keras.metrics.Mean(name=n) for n in names}
        self.maxima = {n: MaxMetric(name=n) for n in ("l2_max", "linf_max")}

    @property
    def trackers(self) -> list:
        return list(self.means.values()) + list(self.maxima.values())

    def update(self, x, x_hat, labels, clean_logits, adv_logits, target_class=None):
        labels = tf.cast(labels, tf.int32)
        clean_pred = tf.argmax(clean_logits, -1, output_type=tf.int32)
        adv_pred = tf.argmax(adv_logits, -1, output_type=tf.int32)
        delta = x_hat - x
        l2, linf = per_example_norm(delta, "l2"), per_example_norm(delta, "linf")
        values = {"adv_accuracy": adv_pred == labels, "clean_accuracy": clean_pred == labels,
                  "fooling_rate": adv_pred != clean_pred, "l2_mean": l2, "linf_mean": linf}
        if "target_success" in self.means:
            values["target_success"] = adv_pred == target_class
        for name, value in values.items():
            self.means[name].update_state(tf.cast(value, tf.float32))
        self.maxima["l2_max"].update_state(l2)
        self.maxima["linf_max"].update_state(linf)
