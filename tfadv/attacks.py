"""Reference iterative attacks as pure functions (the yardstick for the generators).

    x_adv = pgd(classifier, x, labels, eps=2.4, norm="l2", steps=40)
    x_adv = get_attack("fgsm")(classifier, x, labels, eps=0.1, norm="linf")

``classifier`` is any callable images -> logits (a Keras model, a SavedModel's
``serve``). Every returned ``x_adv`` satisfies the budget exactly (projection
by :func:`tfadv.budgets.constrain`) and lies in [0, 1].

``ATTACKS`` is the registry of budgeted per-image attacks, each
``fn(classifier, x, labels, *, eps, norm, seed=0, **settings) -> x_adv``;
``tfadv-evaluate-defense --attacks=NAME`` and the benchmarks find them there.
Adding one: a function decorated with ``@register_attack("name")`` (here or in
a module imported by ``tfadv.attacks``) and its test.
"""

import json

import tensorflow as tf

from tfadv.compiled import CompiledLoops
from tfadv.budgets import check_budget, constrain, per_example_norm
from tfadv.errors import ConfigError, InputError
from tfadv.inputs import check_images
from tfadv.losses import LOSSES, adversarial_loss, check_loss
from tfadv.registry import Registry


ATTACKS = Registry("attack")
register_attack = ATTACKS.register  # decorator: @register_attack("name"), the one registration point
get_attack = ATTACKS.lookup  # the attack registered as ``name``; a one-line error names the known ones


def _random_start(x, norm, eps, seed):
    """A uniform random point of the eps-ball: L-inf uniform per pixel; L2 a uniform direction at radius
    ``eps * U ** (1 / n)`` (n pixels: uniform in the ball's volume), direction and radius from independent seeds."""
    if norm == "linf":
        return tf.random.stateless_uniform(tf.shape(x), seed, -eps, eps)
    direction_seed, radius_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    direction = tf.random.stateless_normal(tf.shape(x), direction_seed)
    n = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
    radius = eps * tf.random.stateless_uniform(tf.shape(x)[:1], radius_seed) ** (1.0 / n)
    unit = constrain(direction, "l2", 1.0, "threshold")
    return unit * tf.reshape(radius, (-1,) + (1,) * (len(x.shape) - 1))


@register_attack("pgd")
def pgd(classifier, x, labels, *, eps: float, norm: str = "linf", steps: int = 40, step_size: float | None = None,
        random_start: bool = True, restarts: int = 1, loss: str = "untargeted", target_class: int | None = None,
        seed: int = 0, start=None, loss_settings: dict | None = None):
    """Projected gradient descent (Madry et al. 2018) on the adversarial loss, within the eps-ball.

    Args:
        classifier: images -> logits.
        x: clean images [B, H, W, C] in [0, 1] (else InputError); labels: int [B].
        eps, norm: the budget ("l2" or "linf"), measured on [0, 1] images.
        steps: gradient steps per restart; step_size: default 2.5 * eps / steps.
        random_start: start from a random point of the ball (else from x).
        start: images [B, H, W, C] to start from instead (e.g. a generator's
            x_hat); projected into the ball first. Excludes random_start and restarts > 1.
        restarts: independent runs. Per example, success first: the image of a restart that succeeded
            (misclassified, or classified as ``target_class``) if any did, the lowest-loss one among those;
            else the lowest-loss image. An example one restart broke is never returned unbroken.
        loss, target_class, loss_settings: the objective minimised (tfadv.losses.adversarial_loss; the loss's
            own settings, e.g. ``{"kappa": 5.0}`` for cw, missing ones at their defaults).

    Returns:
        x_adv with ``||x_adv - x||_p <= eps`` per example and values in [0, 1].
    """
    eps = check_budget(norm, eps)
    check_loss(loss, target_class)
    settings = _settings_key(loss, loss_settings)
    if not isinstance(steps, int) or steps < 1 or not isinstance(restarts, int) or restarts < 1:
        raise ConfigError(f"steps and restarts must be ints >= 1. Received: steps={steps!r}, restarts={restarts!r}")
    alpha = float(step_size if step_size is not None else 2.5 * eps / steps)
    if not alpha > 0:
        raise ConfigError(f"step_size must be > 0. Received: {step_size!r}")
    x = check_images(x, name="x")
    if start is not None:
        if random_start or restarts != 1:
            raise ConfigError("pgd: start= replaces the random start; pass random_start=False and restarts=1.")
        start = check_images(start, name="start")
        if not start.shape.is_compatible_with(x.shape):
            raise InputError(f"start must have the shape of x {x.shape}; got {start.shape}.")
    labels = tf.cast(labels, tf.int32)
    if labels.shape.rank != 1 or (labels.shape[0] is not None and x.shape[0] is not None
                                  and labels.shape[0] != x.shape[0]):
        raise InputError(f"labels must be one int per image: shape [{x.shape[0]}]; got {labels.shape}.")
    if start is not None:
        run = _compiled_pgd(classifier, eps, norm, steps, alpha, loss, target_class, settings)
        return run(x, labels, start - x)[0]
    return _pgd(classifier, x, labels, eps, norm, steps, alpha, random_start, restarts, loss, target_class, seed,
                settings)


@register_attack("fgsm")
def fgsm(classifier, x, labels, *, eps: float, norm: str = "linf", step_size: float | None = None,
         random_start: bool = True, seed: int = 0, loss: str = "untargeted", target_class: int | None = None,
         loss_settings: dict | None = None):
    """FGSM with a random start (Wong et al. 2020, "fast adversarial training"): one signed-gradient step of
    ``step_size`` (default 1.25 * eps) from a uniform random point of the ball, projected back into it.

    The one-step attack that fast adversarial training trains on, and the cheapest row of an evaluation.
    """
    return pgd(classifier, x, labels, eps=eps, norm=norm, steps=1,
               step_size=1.25 * float(eps) if step_size is None else step_size, random_start=random_start,
               seed=seed, loss=loss, target_class=target_class, loss_settings=loss_settings)


_LOOPS = CompiledLoops()


def _settings_key(loss: str, loss_settings: dict | None) -> str:
    """The loss's settings checked and complete (defaults filled in), as a key of the compiled loops."""
    return json.dumps(LOSSES[loss].complete(loss_settings), sort_keys=True)


def _compiled_pgd(classifier, eps, norm, steps, alpha, loss, target_class, loss_settings="{}"):
    """One traced PGD loop per (classifier, settings), reused across batches (``loss_settings``: their key)."""
    settings = (eps, norm, steps, alpha, loss, target_class, loss_settings)
    own = json.loads(loss_settings)
    found = _LOOPS.find(classifier, settings)
    if found is not None:
        return found

    @tf.function(reduce_retracing=True)
    def run(x, labels, start):
        clean_logits = classifier(x) if LOSSES[loss].needs_clean_logits else None
        shape = tf.concat([tf.shape(x)[:1], tf.ones([tf.rank(x) - 1], tf.int32)], 0)

        def objective(x_adv):
            return adversarial_loss(loss, classifier(x_adv), labels, clean_logits, target_class, settings=own)

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
        logits = classifier(x_adv)
        value = adversarial_loss(loss, logits, labels, clean_logits, target_class, settings=own)
        predicted = tf.argmax(logits, -1, output_type=tf.int32)
        succeeded = predicted == target_class if target_class is not None else predicted != labels
        return x_adv, value, succeeded

    return _LOOPS.keep(classifier, settings, run)


def _pgd(classifier, x, labels, eps, norm, steps, alpha, random_start, restarts, loss, target_class, seed,
         loss_settings):
    """Runs the restarts and keeps, per example, a succeeding image first and the lowest loss second."""
    run = _compiled_pgd(classifier, eps, norm, steps, alpha, loss, target_class, loss_settings)
    best = best_loss = best_succeeded = None
    for r in range(restarts):
        start = _random_start(x, norm, eps, tf.constant([seed, r])) if random_start else tf.zeros_like(x)
        x_adv, value, succeeded = run(x, labels, start)
        if best is None:
            best, best_loss, best_succeeded = x_adv, value, succeeded
            continue
        better = (succeeded & ~best_succeeded) | ((succeeded == best_succeeded) & (value < best_loss))
        best = tf.where(tf.reshape(better, (-1,) + (1,) * (len(x.shape) - 1)), x_adv, best)
        best_loss = tf.where(better, value, best_loss)
        best_succeeded = best_succeeded | succeeded
    return best
