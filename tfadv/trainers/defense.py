"""Defences: training the classifier against attacks (the seed's future work).

``JointAdversarialTrainer``: classifier and perturbation generator trained
together, two optimizers in one ``train_step``. Each step the generator is
updated to fool the *current* classifier within its budget, then the
classifier is updated on a mix of clean images and the images that generator
step produced (the generator's BatchNorm in training mode, as it was
optimised). With ``refine_steps`` > 0 those images are first pushed
further by a few PGD steps that start from the generator's x_hat: the
generator supplies the starting point a multi-step PGD would have to find,
at a fraction of PGD's cost.

``PGDAdversarialTrainer``: Madry et al.'s reference defence: the classifier is
trained on PGD adversarial examples (optionally mixed with clean images).

Both expose the classifier as ``.classifier`` (what the zoo exports). Clean
and adversarial images go through the classifier as one batch, so its
BatchNorm normalises (and tracks) the statistics of the mix it is trained on.
"""

import keras
import tensorflow as tf

from tfadv.attacks import pgd
from tfadv.backup import ResumableCallback
from tfadv.budgets import check_budget
from tfadv.distribute import minimize, synced_results
from tfadv.errors import ConfigError
from tfadv.losses import adversarial_loss, kl_divergence, untargeted_losses
from tfadv.metrics import AttackMetrics
from tfadv.registry import Registry
from tfadv.serialization import NestedModels
from tfadv.trainers.perturbation import batch_of, generator_check, nonfinite_count, raw_output_attack
from tfadv.trainers.two_player import SecondOptimizerMixin

def _check_mix(adversarial_fraction):
    if not 0.0 <= adversarial_fraction <= 1.0:
        raise ConfigError(f"adversarial_fraction must be in [0, 1]. Received: {adversarial_fraction!r}")
    return float(adversarial_fraction)


def _mixed_cross_entropy(logits_clean, logits_adv, labels, adversarial_fraction):
    ce = keras.losses.sparse_categorical_crossentropy
    return ((1.0 - adversarial_fraction) * tf.reduce_mean(ce(labels, logits_clean, from_logits=True))
            + adversarial_fraction * tf.reduce_mean(ce(labels, logits_adv, from_logits=True)))


class _DefenseBase(NestedModels, keras.Model):
    """Shared metrics: classifier loss, clean accuracy and the attack metrics of the training attack."""

    NESTED_MODELS = ("classifier", "attacker")

    def __init__(self, classifier, adversarial_fraction=0.5, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.adversarial_fraction = _check_mix(adversarial_fraction)
        self.loss_tracker = keras.metrics.Mean(name="classifier_loss")
        self.attack_metrics = AttackMetrics(targeted=False)

    def call(self, images, training=False):
        return self.classifier(images, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker] + self.attack_metrics.trackers

    def adversarial(self, x, labels):
        raise NotImplementedError

    def classifier_loss(self, clean_logits, adv_logits, labels):
        """What the classifier minimises, reported as ``classifier_loss`` in training and validation alike: the
        clean / adversarial cross-entropy mix (a method with another objective overrides only this)."""
        return _mixed_cross_entropy(clean_logits, adv_logits, labels, self.adversarial_fraction)

    def test_step(self, data):
        x, labels = batch_of(data)
        return self._measure(x, self.adversarial(x, labels), labels)

    def _measure(self, x, x_adv, labels):
        """Validation figures of one batch given its training-attack images."""
        clean_logits = self.classifier(x, training=False)
        adv_logits = self.classifier(x_adv, training=False)
        self.loss_tracker.update_state(self.classifier_loss(clean_logits, adv_logits, labels))
        self.attack_metrics.update(x, x_adv, labels, clean_logits, adv_logits)
        return synced_results(self.metrics)

    def _classifier_step(self, x, x_adv, labels):
        """One classifier update on clean and adversarial images as one batch (one set of BatchNorm statistics)."""
        batch = tf.shape(x)[0]
        with tf.GradientTape() as tape:
            logits = self.classifier(tf.concat([x, tf.cast(x_adv, x.dtype)], 0), training=True)
            clean_logits, adv_logits = logits[:batch], logits[batch:]
            loss = self.classifier_loss(clean_logits, adv_logits, labels)
        minimize(self.optimizer, tape, loss, self.classifier.trainable_variables)
        self.loss_tracker.update_state(loss)
        self.attack_metrics.update(x, x_adv, labels, clean_logits, adv_logits)

    def get_config(self):
        return {**super().get_config(), "classifier": keras.saving.serialize_keras_object(self.classifier),
                "adversarial_fraction": self.adversarial_fraction}


@keras.saving.register_keras_serializable(package="tfadv")
class JointAdversarialTrainer(SecondOptimizerMixin, _DefenseBase):
    """Classifier and generator trained together (see module doc).

    Args:
        classifier: trainable classifier, [0, 1] images -> logits.
        attacker: x -> x_hat model with its own budget (a thresholded perturbation model).
        adversarial_fraction: weight of the adversarial images in the classifier loss.
        generator_steps: generator updates per classifier update.
        attack_loss: the generator's adversarial loss (tfadv.losses).
        attack_kappa: the confidence margin of that loss when it is "cw".
        refine_steps: PGD steps from the generator's x_hat before the classifier
            sees it (0: the generator's images as they are).
        norm, eps: the budget of those PGD steps (the attacker's own; needed
            only when refine_steps > 0).
        step_size: the step of those PGD steps (None: 2.5 eps / refine_steps;
            1.25 eps with refine_steps=1 is FGSM started from x_hat instead of
            a random point).
        generator_batch: the generator's update uses only the first this many
            images of each batch (None: all). The update's cost grows with the
            batch, so a sub-batch shrinks the generator's share of a step; x_hat
            for the classifier then comes from one more forward pass of the
            updated generator over the whole batch.

    Compile with ``optimizer=`` (classifier) and ``g_optimizer=`` (generator).
    """

    SECOND_OPTIMIZER = "g_optimizer"

    def __init__(self, classifier, attacker, adversarial_fraction=0.5, generator_steps=1, attack_loss="cw",
                 refine_steps=0, norm=None, eps=None, attack_kappa=2.0, step_size=None, generator_batch=None,
                 **kwargs):
        super().__init__(classifier, adversarial_fraction, **kwargs)
        if attack_loss not in untargeted_losses():
            raise ConfigError(f"attack_loss must be one of {untargeted_losses()} (a defence's generator attacks every "
                              f"image, untargeted). Received: {attack_loss!r}")
        if not isinstance(generator_steps, int) or generator_steps < 1:
            raise ConfigError(f"generator_steps must be an int >= 1. Received: {generator_steps!r}")
        if not isinstance(refine_steps, int) or refine_steps < 0:
            raise ConfigError(f"refine_steps must be an int >= 0. Received: {refine_steps!r}")
        if refine_steps:
            if norm is None or eps is None:
                raise ConfigError("refine_steps > 0 needs the budget of its PGD steps: pass norm= and eps=.")
            eps = check_budget(norm, eps)
        if step_size is not None and not step_size > 0:
            raise ConfigError(f"step_size must be > 0 or None. Received: {step_size!r}")
        if generator_batch is not None and (not isinstance(generator_batch, int) or generator_batch < 1):
            raise ConfigError(f"generator_batch must be an int >= 1 or None. Received: {generator_batch!r}")
        self.step_size = None if step_size is None else float(step_size)
        self.generator_batch = generator_batch
        self.attacker, self.generator_steps, self.attack_loss = attacker, generator_steps, attack_loss
        self.attack_kappa = float(attack_kappa)
        self._attack = raw_output_attack(attacker)  # (x_hat, the generator's raw output); not tracked
        self.refine_steps, self.norm, self.eps = refine_steps, norm, eps
        self.g_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.nonfinite_tracker = generator_check()

    @property
    def metrics(self):
        return super().metrics + [self.g_loss_tracker, self.nonfinite_tracker]

    def first_player_variables(self):
        return self.classifier.trainable_variables

    def second_player_variables(self):
        return self.attacker.trainable_variables

    def adversarial(self, x, labels):
        """The training attack with the generator in inference mode (evaluation, image grids)."""
        return self._refined(x, self.attacker(x, training=False), labels)

    def _refined(self, x, x_hat, labels):
        """The generator's images, pushed ``refine_steps`` PGD steps further; no gradient to the generator."""
        x_hat = tf.stop_gradient(x_hat)
        if not self.refine_steps:
            return x_hat
        frozen = lambda images: self.classifier(images, training=False)  # noqa: E731
        return tf.stop_gradient(pgd(frozen, x, labels, eps=self.eps, norm=self.norm, steps=self.refine_steps,
                                    step_size=self.step_size, random_start=False, start=x_hat))

    def generator_loss(self, x, labels, training=False):
        """The generator's objective on a batch: its adversarial loss against the current classifier."""
        return self._generator_objective(x, labels, training)[0]

    def _generator_objective(self, x, labels, training):
        """(loss, x_hat, the generator's raw output) on a batch."""
        x_hat, raw = self._attack(x, training=training)
        logits = self.classifier(x_hat, training=False)
        return tf.reduce_mean(adversarial_loss(self.attack_loss, logits, labels, kappa=self.attack_kappa)), x_hat, raw

    def train_step(self, data):
        x, labels = batch_of(data)
        n = self.generator_batch
        for _ in range(self.generator_steps):
            with tf.GradientTape() as tape:
                g_loss, x_hat, raw = self._generator_objective(x[:n], labels[:n], training=True)
            minimize(self.g_optimizer, tape, g_loss, self.second_player_variables())
        self.g_loss_tracker.update_state(g_loss)
        self.nonfinite_tracker.update_state(nonfinite_count(raw))
        if n is not None:  # the updated generator's images for the whole batch (no tape: forward only)
            x_hat = self.attacker(x, training=True)
        # The classifier trains on the images the (last) generator step optimised, BatchNorm in training mode.
        self._classifier_step(x, self._refined(x, x_hat, labels), labels)
        return synced_results(self.metrics)

    def test_step(self, data):
        x, labels = batch_of(data)
        g_loss, x_hat, raw = self._generator_objective(x, labels, training=False)
        self.g_loss_tracker.update_state(g_loss)  # else val_generator_loss reads 0
        self.nonfinite_tracker.update_state(nonfinite_count(raw))
        return self._measure(x, self._refined(x, x_hat, labels), labels)  # the generator runs once per batch

    def get_config(self):
        return {**super().get_config(), "attacker": keras.saving.serialize_keras_object(self.attacker),
                "generator_steps": self.generator_steps, "attack_loss": self.attack_loss,
                "attack_kappa": self.attack_kappa, "refine_steps": self.refine_steps, "norm": self.norm,
                "eps": self.eps, "step_size": self.step_size, "generator_batch": self.generator_batch}


@keras.saving.register_keras_serializable(package="tfadv")
class PGDAdversarialTrainer(_DefenseBase):
    """Madry et al.: train the classifier on PGD examples within (norm, eps).

    Args:
        classifier: trainable classifier.
        norm, eps: the budget; steps: PGD steps per training batch (7-10 is usual); step_size: default
            2.5 * eps / steps (FGSM with random start, "fast adversarial training": steps=1, step_size=1.25 eps).
        random_start: PGD starts from a random point of the ball (Madry's recipe) or from x.
        adversarial_fraction: weight of the PGD images in the loss (1.0: Madry's pure form).
    """

    def __init__(self, classifier, norm="linf", eps=0.1, steps=7, adversarial_fraction=0.5, random_start=True,
                 step_size=None, **kwargs):
        super().__init__(classifier, adversarial_fraction, **kwargs)
        self.norm, self.eps, self.steps, self.random_start = norm, float(eps), int(steps), bool(random_start)
        self.step_size = None if step_size is None else float(step_size)

    def adversarial(self, x, labels):
        frozen = lambda images: self.classifier(images, training=False)  # noqa: E731
        return tf.stop_gradient(pgd(frozen, x, labels, eps=self.eps, norm=self.norm, steps=self.steps,
                                    step_size=self.step_size, random_start=self.random_start))

    def train_step(self, data):
        x, labels = batch_of(data)
        self._classifier_step(x, self.adversarial(x, labels), labels)
        return synced_results(self.metrics)

    def get_config(self):
        return {**super().get_config(), "norm": self.norm, "eps": self.eps, "steps": self.steps,
                "random_start": self.random_start, "step_size": self.step_size}


@keras.saving.register_keras_serializable(package="tfadv")
class TRADESTrainer(PGDAdversarialTrainer):
    """TRADES (Zhang et al. 2019): cross-entropy on clean images plus ``beta`` times KL(p(x) || p(x_adv)), where
    x_adv maximises that KL by PGD within (norm, eps) (the ``trades_kl`` loss of ``tfadv.losses``).

    The robust-accuracy / clean-accuracy trade-off is ``beta`` (6 in the paper). PGD starts from a uniform
    random point of the ball, where the paper starts from 0.001 * N(0, 1).
    """

    def __init__(self, classifier, norm="linf", eps=0.1, steps=10, beta=6.0, step_size=None, **kwargs):
        kwargs.pop("adversarial_fraction", None)
        super().__init__(classifier, norm, eps, steps=steps, step_size=step_size, adversarial_fraction=1.0,
                         **kwargs)
        if not beta >= 0:
            raise ConfigError(f"beta must be >= 0. Received: {beta!r}")
        self.beta = float(beta)

    def adversarial(self, x, labels):
        frozen = lambda images: self.classifier(images, training=False)  # noqa: E731
        return tf.stop_gradient(pgd(frozen, x, labels, eps=self.eps, norm=self.norm, steps=self.steps,
                                    step_size=self.step_size, random_start=self.random_start, loss="trades_kl"))

    def classifier_loss(self, clean_logits, adv_logits, labels):
        """Clean cross-entropy + beta * KL(p(x) || p(x_adv)), in float32."""
        natural = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                                 logits=tf.cast(clean_logits, tf.float32))
        robust = kl_divergence(tf.cast(clean_logits, tf.float32), tf.cast(adv_logits, tf.float32))
        return tf.reduce_mean(natural + self.beta * robust)

    def get_config(self):
        config = super().get_config()
        config.pop("adversarial_fraction", None)
        return {**config, "beta": self.beta}


class RobustAccuracyGuard(ResumableCallback):
    """Early stopping against catastrophic overfitting (Wong et al. 2020): after every epoch, PGD accuracy of the
    defence's classifier on a fixed held-out batch (logged as ``guard_pgd_accuracy``); when it falls more than
    ``max_drop`` below the previous epoch's, training stops and the classifier gets back the weights of its best
    epoch. FGSM training can collapse within one epoch to a classifier that beats FGSM and nothing else."""

    def __init__(self, images, labels, norm, eps, steps=10, max_drop=0.2):
        super().__init__()
        self.images, self.labels = tf.convert_to_tensor(images), tf.convert_to_tensor(labels)
        self.norm, self.eps, self.steps, self.max_drop = norm, float(eps), int(steps), float(max_drop)
        self.best, self.previous, self.best_weights, self.stopped_epoch = -1.0, None, None, None

    def robust_accuracy(self) -> float:
        classifier = self.model.classifier
        frozen = lambda images: classifier(images, training=False)  # noqa: E731
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


# Defence methods: a DefenseExperiment's ``method`` names the builder of its (uncompiled) trainer.

DEFENSES = Registry("defence method")


def register_defense(name: str, co_trained_generator: bool = False):
    """Decorator: registers ``build(cfg, classifier, image_shape) -> trainer`` as defence method ``name`` (the one
    registration point; ``DefenseExperiment.method`` and ``tfadv.tasks.defense`` find it by name).

    ``co_trained_generator``: the trainer co-trains a perturbation model as ``.attacker``; the run saves it and
    export publishes it as the entry ``<name>_generator``. A trainer with a second optimizer names it in
    ``SECOND_OPTIMIZER``; the task compiles it with ``Adam(cfg.g_learning_rate)``.
    """
    def decorate(build):
        build.co_trained_generator = bool(co_trained_generator)
        return DEFENSES.register(name)(build)

    return decorate


def co_trains_a_generator(method: str) -> bool:
    """Whether defence ``method`` was registered with a co-trained generator (its run saves ``attacker.keras``)."""
    return getattr(DEFENSES.lookup(method), "co_trained_generator", False)


@register_defense("pgd")
def _pgd_training(cfg, classifier, image_shape):
    """Madry et al.: PGD with ``pgd_steps`` steps (step ``step_size``, default 2.5 eps / steps)."""
    return PGDAdversarialTrainer(classifier, cfg.norm, cfg.eps, steps=cfg.pgd_steps, step_size=cfg.step_size,
                                 adversarial_fraction=cfg.adversarial_fraction)


@register_defense("fgsm")
def _fgsm_training(cfg, classifier, image_shape):
    """Fast adversarial training (Wong et al. 2020): FGSM from a random start, step ``step_size`` (default
    1.25 eps)."""
    return PGDAdversarialTrainer(classifier, cfg.norm, cfg.eps, steps=1,
                                 step_size=1.25 * cfg.eps if cfg.step_size is None else cfg.step_size,
                                 adversarial_fraction=cfg.adversarial_fraction)


@register_defense("joint", co_trained_generator=True)
def _joint_training(cfg, classifier, image_shape):
    """The seed's future work: a thresholded generator trained with the classifier (``refine_steps`` PGD steps
    from its x_hat)."""
    from tfadv.models.generators import build_generator, perturbation_model

    generator = build_generator(cfg.generator, input_shape=tuple(image_shape), output_activation="tanh",
                                **cfg.generator_kwargs)
    return JointAdversarialTrainer(classifier, perturbation_model(generator, "thresholded", cfg.norm, cfg.eps),
                                   adversarial_fraction=cfg.adversarial_fraction,
                                   generator_steps=cfg.generator_steps, refine_steps=cfg.refine_steps,
                                   norm=cfg.norm, eps=cfg.eps, attack_loss=cfg.generator_loss,
                                   attack_kappa=cfg.generator_kappa, step_size=cfg.step_size,
                                   generator_batch=cfg.generator_batch)


@register_defense("trades")
def _trades_training(cfg, classifier, image_shape):
    """TRADES: clean cross-entropy + ``trades_beta`` * KL to a ``pgd_steps``-step KL-maximising PGD image."""
    return TRADESTrainer(classifier, cfg.norm, cfg.eps, steps=cfg.pgd_steps, beta=cfg.trades_beta,
                         step_size=cfg.step_size)
