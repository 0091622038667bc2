"""Reference iterative attacks as pure functions (the yardstick for the generators).

    x_adv = pgd(classifier, x, labels, eps=2.4, norm="l2", steps=40)

``classifier`` is any callable images -> logits (a Keras model, a SavedModel's
``serve``). Every returned ``x_adv`` satisfies the budget exactly (projection
by :func:`tfadv.budgets.constrain`) and lies in [0, 1].
"""

import tensorflow as tf

from tfadv.budgets import check_budget, constrain, per_example_norm
from tfadv.errors import ConfigError
from tfadv.losses import adversarial_loss, check_loss


def _random_start(x, norm, eps, seed):
    if norm == "linf":
        return tf.random.stateless_uniform(tf.shape(x), seed, -eps, eps)
    direction = tf.random.stateless_normal(tf.shape(x), seed)
    radius = tf.random.stateless_uniform(tf.shape(x)[:1], seed + 1, 0.0, eps)
    unit = constrain(direction, "l2", 1.0, "scale")
    return unit * tf.reshape(radius, (-1,) + (1,) * (len(x.shape) - 1))


def pgd(classifier, x, labels, *, eps: float, norm: str = "linf", steps: int = 40, step_size: float | None = None,
        random_start: bool = True, restarts: int = 1, loss: str = "untargeted", target_class: int | None = None,
        seed: int = 0):
    """Projected gradient descent (Madry et al. 2018) on the adversarial loss, within the eps-ball.

    Args:
        classifier: images -> logits.
        x: clean images [B, H, W, C] in [0, 1]; labels: int [B].
        eps, norm: the budget ("l2" or "linf"), measured on [0, 1] images.
        steps: gradient steps per restart; step_size: default 2.5 * eps / steps.
        random_start: start from a random point of the ball (else from x).
        restarts: independent runs; per example the one with the lowest loss is kept.
        loss, target_class: the objective minimised (tfadv.losses.adversarial_loss).

    Returns:
        x_adv with ``||x_adv - x||_p <= eps`` per example and values in [0, 1].
    """
    eps = check_budget(norm, eps)
    check_loss(loss, target_class)
    if not isinstance(steps, int) or steps < 1 or not isinstance(restarts, int) or restarts < 1:
        raise ConfigError(f"steps and restarts must be ints >= 1. Received: steps={steps!r}, restarts={restarts!r}")
    alpha = float(step_size if step_size is not None else 2.5 * eps / steps)
    if not alpha > 0:
        raise ConfigError(f"step_size must be > 0. Received: {step_size!r}")
    x = tf.clip_by_value(tf.convert_to_tensor(x, tf.float32), 0.0, 1.0)
    labels = tf.cast(labels, tf.int32)
    return _pgd(classifier, x, labels, eps, norm, steps, alpha, random_start, restarts, loss, target_class, seed)


_COMPILED: dict = {}


def _compiled_pgd(classifier, eps, norm, steps, alpha, loss, target_class):
    """One traced PGD loop per (classifier, settings), reused across batches."""
    key = (id(classifier), eps, norm, steps, alpha, loss, target_class)
    if key in _COMPILED and _COMPILED[key][0] is classifier:
        return _COMPILED[key][1]

    @tf.function(reduce_retracing=True)
    def run(x, labels, start):
        clean_logits = classifier(x) if loss == "least_likely" else None
        shape = tf.concat([tf.shape(x)[:1], tf.ones([tf.rank(x) - 1], tf.int32)], 0)

        def objective(x_adv):
            return adversarial_loss(loss, classifier(x_adv), labels, clean_logits, target_class)

        def project(x_adv):
            return tf.clip_by_value(x + constrain(x_adv - x, norm, eps, "project"), 0.0, 1.0)

        def step(i, x_adv):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                value = tf.reduce_sum(objective(x_adv))
            grad = tape.gradient(value, x_adv)
            if norm == "linf":
                update = tf.sign(grad)
            else:
                update = grad / tf.maximum(tf.reshape(per_example_norm(grad, "l2"), shape), 1e-12)
            return i + 1, project(x_adv - alpha * update)  # descend: the loss is minimised

        _, x_adv = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), project(x + start)))
        return x_adv, objective(x_adv)

    if len(_COMPILED) > 16:
        _COMPILED.clear()
    _COMPILED[key] = (classifier, run)
    return run


def _pgd(classifier, x, labels, eps, norm, steps, alpha, random_start, restarts, loss, target_class, seed):
    run = _compiled_pgd(classifier, eps, norm, steps, alpha, loss, target_class)
    best, best_loss = None, None
    for r in range(restarts):
        start = _random_start(x, norm, eps, tf.constant([seed, r])) if random_start else tf.zeros_like(x)
        x_adv, value = run(x, labels, start)
        if best is None:
            best, best_loss = x_adv, value
        else:
            better = tf.reshape(value < best_loss, (-1,) + (1,) * (len(x.shape) - 1))
            best = tf.where(better, x_adv, best)
            best_loss = tf.minimum(value, best_loss)
    return best
