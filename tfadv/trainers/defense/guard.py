"""Early stopping for any defense: the classifier's PGD accuracy on held-out images, watched every epoch."""

import tensorflow as tf

from tfadv.attacks import pgd
from tfadv.backup import ResumableCallback


class RobustAccuracyGuard(ResumableCallback):
    """Early stopping against catastrophic overfitting (Wong et al. 2020): after every epoch, PGD accuracy of the
    defense's classifier on a fixed held-out batch (logged as ``guard_pgd_accuracy``); when it falls more than
    ``max_drop`` below the previous epoch's, training stops and the classifier gets back the weights of its best
    epoch. FGSM training can collapse within one epoch to a classifier that beats FGSM and nothing else."""

    def __init__(self, images, labels, norm, eps, steps=10, max_drop=0.2):
        super().__init__()
        self.images, self.labels = tf.convert_to_tensor(images), tf.convert_to_tensor(labels)
        self.norm, self.eps, self.steps, self.max_drop = norm, float(eps), int(steps), float(max_drop)
        self.best, self.previous, self.best_weights, self.stopped_epoch = -1.0, None, None, None

    def set_model(self, model):
        super().set_model(model)
        classifier = model.classifier  # one function for the whole run: PGD's traced loop is keyed by it
        self._frozen = lambda images: classifier(images, training=False)

    def robust_accuracy(self) -> float:
        frozen = self._frozen
        x_adv = pgd(frozen, self.images, self.labels, eps=self.eps, norm=self.norm, steps=self.steps)
        predictions = tf.argmax(frozen(x_adv), -1, output_type=tf.int32)
        return float(tf.reduce_mean(tf.cast(predictions == tf.cast(self.labels, tf.int32), tf.float32)))

    def on_epoch_end(self, epoch, logs=None):
        accuracy = self.robust_accuracy()
        if logs is not None:
            logs["guard_pgd_accuracy"] = accuracy
        if self.previous is not None and accuracy < self.previous - self.max_drop:
            self.model.stop_training, self.stopped_epoch = True, epoch
            self.model.classifier.set_weights(self.best_weights)
            print(f"RobustAccuracyGuard: PGD-{self.steps} accuracy fell from {self.previous:.3f} to {accuracy:.3f} "
                  f"at epoch {epoch + 1}: stopped, and the classifier has its best epoch's weights back.")
        elif accuracy >= self.best:
            self.best, self.best_weights = accuracy, self.model.classifier.get_weights()
        self.previous = accuracy

    def backup_state(self):
        return {"best": self.best, "previous": self.previous}, list(self.best_weights or [])

    def restore_backup_state(self, values, arrays):
        self.best, self.previous, self.best_weights = values["best"], values["previous"], arrays or None
