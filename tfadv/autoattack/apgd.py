"""APGD-CE and APGD-T (Croce & Hein 2020, "Reliable evaluation of adversarial robustness"), native TensorFlow.

    x_adv = apgd(classifier, x, labels, norm="linf", eps=0.1)                      # APGD-CE
    x_adv = apgd_targeted(classifier, x, labels, norm="linf", eps=0.1, n_target_classes=9)   # APGD-T

Follows the reference implementation (fra31/auto-attack, ``autopgd_base.py``) step for step, for L-inf and L2:
a random start on the sphere of radius eps (L-inf: ``eps * t / max|t|`` with t uniform in [-1, 1]; L2: a Gaussian
direction scaled to eps), step size 2 eps, momentum 0.75 after the first step, and the step-size schedule: the
first checkpoint after ``max(int(0.22 n_iter), 1)`` iterations, then every ``k`` iterations with ``k`` shrinking by
``max(int(0.03 n_iter), 1)`` down to ``max(int(0.06 n_iter), 1)``; at a checkpoint an image whose loss rose in
at most ``rho`` of the last ``k`` steps, or whose best loss did not improve since the last checkpoint without a
reduction there, halves its step and restarts from its best point and gradient. The oscillation count reads the
loss history the way the reference does, including its wrap-around to the (still zero) last row at the first
checkpoint. APGD-T maximises the targeted DLR loss ``-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)`` against the
``k``-th most likely clean class, k = 2 .. n_target_classes + 1, each target only on the images no earlier one
fooled. An image counts as fooled as soon as one iterate is misclassified, and that iterate is returned.

The whole ``n_iter`` loop is one ``tf.while_loop`` in a ``tf.function`` traced once per (classifier, settings)
and batch shape class; random starts are stateless, seeded by ``(seed, run)``. Only the random stream differs
from the reference (PyTorch's cannot be reproduced).
"""

import tensorflow as tf

from tfadv.compiled import CompiledLoops
from tfadv.errors import ConfigError

LOSSES = ("ce", "dlr-targeted")
_LOOPS = CompiledLoops()


def check_settings(norm: str, eps: float, n_iter: int, n_restarts: int = 1, rho: float = 0.75) -> float:
    """Validates an APGD run's settings (one-line ConfigError); returns eps as a float."""
    if norm not in ("linf", "l2"):
        raise ConfigError(f"APGD norm must be 'linf' or 'l2'. Received: norm={norm!r}")
    if not (isinstance(eps, (int, float)) and 0 < eps < float("inf")):
        raise ConfigError(f"APGD eps must be a positive finite number. Received: eps={eps!r}")
    if not (isinstance(n_iter, int) and n_iter >= 1 and isinstance(n_restarts, int) and n_restarts >= 1):
        raise ConfigError(f"APGD n_iter and n_restarts must be ints >= 1. Received: n_iter={n_iter!r}, "
                          f"n_restarts={n_restarts!r}")
    if not 0 < rho < 1:
        raise ConfigError(f"APGD rho must be in (0, 1). Received: rho={rho!r}")
    return float(eps)


def apgd(classifier, x, labels, *, norm: str, eps: float, n_iter: int = 100, n_restarts: int = 1,
         rho: float = 0.75, seed: int = 0):
    """APGD on the cross-entropy loss (AutoAttack's APGD-CE): images [N, H, W, C] in [0, 1], int labels [N].

    Each restart attacks only the images no earlier restart fooled. Returns x_adv (float32 tensor): the first
    misclassified iterate where one was found, else the clean image.
    """
    eps = check_settings(norm, eps, n_iter, n_restarts, rho)
    x, labels = tf.convert_to_tensor(x, tf.float32), tf.cast(labels, tf.int32)
    run = _compiled(classifier, norm, eps, n_iter, rho, "ce", tuple(x.shape[1:]))
    adv, robust = x, _correct(classifier, x, labels)
    for restart in range(n_restarts):
        adv, robust = _attack_robust(run, x, labels, labels, adv, robust, tf.constant([seed, restart], tf.int32))
    return adv


TARGETED_DLR_MIN_CLASSES = 4  # the targeted DLR loss reads the 3rd and 4th largest logits


def apgd_targeted(classifier, x, labels, *, norm: str, eps: float, n_target_classes: int = 9, n_iter: int = 100,
                  n_restarts: int = 1, rho: float = 0.75, seed: int = 0):
    """APGD on the targeted DLR loss (AutoAttack's APGD-T) against the runner-up classes of the clean logits.

    ``n_target_classes`` is capped at the number of classes minus one; the loss needs at least 4 classes.
    Returns x_adv as :func:`apgd` does.
    """
    eps = check_settings(norm, eps, n_iter, n_restarts, rho)
    x, labels = tf.convert_to_tensor(x, tf.float32), tf.cast(labels, tf.int32)
    logits = _logits(classifier, x)
    num_classes = int(logits.shape[-1])
    if num_classes < TARGETED_DLR_MIN_CLASSES:
        raise ConfigError(f"APGD-T's targeted DLR loss needs at least {TARGETED_DLR_MIN_CLASSES} classes; the "
                          f"classifier has {num_classes}.")
    order = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
    run = _compiled(classifier, norm, eps, n_iter, rho, "dlr-targeted", tuple(x.shape[1:]))
    adv, robust = x, tf.argmax(logits, -1, output_type=tf.int32) == labels
    for target_rank in range(1, min(int(n_target_classes), num_classes - 1) + 1):
        for restart in range(n_restarts):
            adv, robust = _attack_robust(run, x, labels, order[:, target_rank], adv, robust,
                                         tf.constant([seed, target_rank * 1000 + restart], tf.int32))
    return adv


def _logits(classifier, x):
    return tf.cast(classifier(x), tf.float32)


def _correct(classifier, x, labels):
    return tf.argmax(_logits(classifier, x), -1, output_type=tf.int32) == labels


def _attack_robust(run, x, labels, targets, adv, robust, seed):
    """One APGD run on the images still ``robust``; their fooled ones replace ``adv`` and leave ``robust``."""
    idx = tf.where(robust)[:, 0]
    if int(tf.size(idx)) == 0:
        return adv, robust
    found, fooled = run(tf.gather(x, idx), tf.gather(labels, idx), tf.gather(targets, idx), seed)
    hit = tf.boolean_mask(idx, fooled)[:, None]
    adv = tf.tensor_scatter_nd_update(adv, hit, tf.boolean_mask(found, fooled))
    robust = tf.tensor_scatter_nd_update(robust, hit, tf.zeros(tf.shape(hit)[:1], tf.bool))
    return adv, robust


def per_example_loss(loss: str, logits, labels, targets):
    """The loss APGD maximises, per example: cross-entropy, or the targeted DLR loss towards ``targets``."""
    if loss == "ce":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    top = tf.sort(logits, axis=-1, direction="DESCENDING")
    z_y = tf.gather(logits, labels, batch_dims=1)
    z_t = tf.gather(logits, targets, batch_dims=1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def _compiled(classifier, norm, eps, n_iter, rho, loss, image_shape):
    """The traced ``n_iter``-step APGD run for (classifier, settings, image shape), cached like tfadv.attacks' PGD
    loop; traced once for any batch size (the batch dimension is unknown to the trace)."""
    settings = (norm, eps, n_iter, rho, loss, image_shape)
    found = _LOOPS.find(classifier, settings)
    if found is not None:
        return found
    first_check = max(int(0.22 * n_iter), 1)
    min_check, check_decrease = max(int(0.06 * n_iter), 1), max(int(0.03 * n_iter), 1)

    def per_image(v, like):
        return tf.reshape(v, tf.concat([tf.shape(like)[:1], tf.ones([tf.rank(like) - 1], tf.int32)], 0))

    def flat_norm(v):
        flat = tf.reshape(v, [tf.shape(v)[0], -1])
        if norm == "linf":
            return tf.reduce_max(tf.abs(flat), axis=1)
        return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1))

    def normalize(v):
        return v / (per_image(flat_norm(v), v) + 1e-12)

    def project(x, point):
        if norm == "linf":
            return tf.clip_by_value(tf.clip_by_value(point, x - eps, x + eps), 0.0, 1.0)
        delta = point - x
        return tf.clip_by_value(x + normalize(delta) * tf.minimum(eps, per_image(flat_norm(delta), delta)), 0.0, 1.0)

    def loss_and_grad(x_adv, labels, targets):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            logits = _logits(classifier, x_adv)
            values = per_example_loss(loss, logits, labels, targets)
            total = tf.reduce_sum(values)
        return logits, values, tape.gradient(total, x_adv)

    @tf.function(input_signature=[tf.TensorSpec((None,) + image_shape, tf.float32),
                                  tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32),
                                  tf.TensorSpec([2], tf.int32)])
    def run(x, labels, targets, seed):
        """(x_best_adv, fooled) after one APGD run from a random start on the sphere of radius eps."""
        if norm == "linf":
            t = 2.0 * tf.random.stateless_uniform(tf.shape(x), seed) - 1.0
        else:
            t = tf.random.stateless_normal(tf.shape(x), seed)
        x_adv = tf.clip_by_value(x + eps * normalize(t), 0.0, 1.0)
        logits, loss_now, grad = loss_and_grad(x_adv, labels, targets)
        fooled = tf.argmax(logits, -1, output_type=tf.int32) != labels
        batch = tf.shape(x)[0]
        state = dict(
            x_adv=x_adv, x_old=x_adv, grad=grad, grad_best=grad, x_best=x_adv, x_best_adv=x_adv, fooled=fooled,
            loss_best=loss_now, step=tf.fill([batch], 2.0 * eps), history=tf.zeros([n_iter, batch]),
            counter=tf.constant(0), k=tf.constant(first_check), best_at_check=loss_now,
            reduced_at_check=tf.ones([batch], tf.bool))

        def body(i, s):
            s = dict(s)
            momentum = tf.where(i > 0, 0.75, 1.0)
            x_adv, previous_move = s["x_adv"], s["x_adv"] - s["x_old"]
            step = per_image(s["step"], x_adv)
            direction = tf.sign(s["grad"]) if norm == "linf" else normalize(s["grad"])
            z = project(x, x_adv + step * direction)
            s["x_adv"] = project(x, x_adv + (z - x_adv) * momentum + previous_move * (1.0 - momentum))
            s["x_old"] = x_adv
            logits, loss_now, s["grad"] = loss_and_grad(s["x_adv"], labels, targets)
            misclassified = tf.argmax(logits, -1, output_type=tf.int32) != labels
            s["x_best_adv"] = tf.where(per_image(misclassified, x), s["x_adv"], s["x_best_adv"])
            s["fooled"] = s["fooled"] | misclassified
            s["history"] = tf.tensor_scatter_nd_update(s["history"], [[i]], loss_now[None])
            improved = loss_now > s["loss_best"]
            s["x_best"] = tf.where(per_image(improved, x), s["x_adv"], s["x_best"])
            s["grad_best"] = tf.where(per_image(improved, x), s["grad"], s["grad_best"])
            s["loss_best"] = tf.where(improved, loss_now, s["loss_best"])
            s["counter"] += 1
            return i + 1, tf.cond(tf.equal(s["counter"], s["k"]), lambda: checkpoint(i, s), lambda: s)

        def checkpoint(i, s):
            s = dict(s)
            k = s["k"]
            rows = tf.gather(s["history"], tf.math.floormod(i - tf.range(k + 1), n_iter))  # [k + 1, B], newest first
            rises = tf.reduce_sum(tf.cast(rows[:-1] > rows[1:], tf.float32), axis=0)
            oscillating = rises <= tf.cast(k, tf.float32) * rho
            stalled = ~s["reduced_at_check"] & (s["best_at_check"] >= s["loss_best"])
            reduce = oscillating | stalled
            s["reduced_at_check"], s["best_at_check"] = reduce, s["loss_best"]
            s["step"] = tf.where(reduce, s["step"] / 2.0, s["step"])
            s["x_adv"] = tf.where(per_image(reduce, x), s["x_best"], s["x_adv"])
            s["grad"] = tf.where(per_image(reduce, x), s["grad_best"], s["grad"])
            s["counter"] = tf.constant(0)
            s["k"] = tf.maximum(k - check_decrease, min_check)
            return s

        _, state = tf.while_loop(lambda i, s: i < n_iter, body, (tf.constant(0), state))
        return state["x_best_adv"], state["fooled"]

    return _LOOPS.keep(classifier, settings, run)
