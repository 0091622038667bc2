"""FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein 2020), native TensorFlow, for L-inf and L2.

    x_adv = fab_targeted(classifier, x, labels, norm="linf", eps=0.1)   # AutoAttack's 'fab-t' stage

FAB looks for the smallest perturbation that changes the class: each iteration linearises the margin
``z_t - z_y`` (target logit minus true logit) at the current iterate, projects both the iterate and the clean image
onto that hyperplane intersected with the box [0, 1] (:func:`projection_linf`, :func:`projection_l2`), steps to a
convex combination of the two projections with overshoot ``eta`` (weight ``alpha = min(a1 / (a1 + a2),
alpha_max)`` on the clean image's, a1 and a2 the two projections' norms), and when the step lands on a
misclassified image, keeps it if it is the closest found so far and pulls the iterate back towards the clean image
by ``beta``.

Follows the reference implementation (fra31/auto-attack, ``fab_base.py``, ``fab_pt.py``, ``fab_projections.py``)
as AutoAttack's ``version='standard'`` runs it: one restart, hence no random start; targets are the k-th largest
clean logits, k = 2 .. n_target_classes + 1, each target run only on the images no earlier target fooled; a run's
closest misclassified iterate counts only if it is still misclassified and its norm is at most eps. The
projections keep the reference's arithmetic, its answer when the hyperplane lies outside the box (the box corner
that moves the linearised margin furthest towards it) and its binary searches, which run a fixed
ceil(log2(D)) steps and so are vectorised here over the whole batch instead of over the rows that need them.

The ``n_iter`` loop is one ``tf.while_loop`` in a ``tf.function`` traced once per (classifier, settings, image
shape), with a batch dimension of None so the shrinking sets of images of later targets reuse it. Computation is
in float32 (logits are cast, so a mixed-precision classifier works). Ties between clean logits are broken as in
``tfadv.autoattack.apgd`` (stable descending sort), so APGD-T and FAB-T attack the same targets.
"""

import math
import numbers

import tensorflow as tf

from tfadv.compiled import CompiledLoops
from tfadv.errors import ConfigError

NORMS = ("linf", "l2")
_LOOPS = CompiledLoops()


def fab_targeted(classifier, x, labels, *, norm: str, eps: float, n_target_classes: int = 9, n_iter: int = 100,
                 alpha_max: float = 0.1, eta: float = 1.05, beta: float = 0.9, seed: int = 0):
    """FAB-T against the runner-up classes of the clean logits: images ``x`` [N, H, W, C] in [0, 1], int ``labels``.

    ``n_target_classes`` is capped at the number of classes minus one. ``seed`` is accepted for the runner's
    uniform interface: FAB-T with one restart starts from the clean image and draws no random numbers.

    Returns x_adv (float32 tensor): for each image FAB-T fooled within eps, its closest misclassified iterate;
    for the rest, the clean image.
    """
    del seed  # no random start with a single restart (the reference's use_rand_start=(counter > 0))
    eps = check_settings(norm, eps, n_target_classes, n_iter, alpha_max, eta, beta)
    x, labels = tf.convert_to_tensor(x, tf.float32), tf.cast(labels, tf.int32)
    if x.shape.rank != 4 or labels.shape.rank != 1 or labels.shape[0] != x.shape[0]:
        raise ConfigError(f"FAB-T needs images [N, H, W, C] and one label each; got {x.shape} and {labels.shape}.")
    logits = _logits(classifier, x)
    num_classes = int(logits.shape[-1])
    order = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
    run = _compiled(classifier, norm, eps, n_iter, float(alpha_max), float(eta), float(beta), tuple(x.shape[1:]))
    adv, robust = x, tf.argmax(logits, -1, output_type=tf.int32) == labels
    for target_rank in range(1, min(n_target_classes, num_classes - 1) + 1):
        idx = tf.where(robust)[:, 0]
        if int(tf.size(idx)) == 0:
            break
        found, fooled = run(tf.gather(x, idx), tf.gather(labels, idx), tf.gather(order[:, target_rank], idx))
        hit = tf.boolean_mask(idx, fooled)[:, None]
        adv = tf.tensor_scatter_nd_update(adv, hit, tf.boolean_mask(found, fooled))
        robust = tf.tensor_scatter_nd_update(robust, hit, tf.zeros(tf.shape(hit)[:1], tf.bool))
    return adv


def check_settings(norm: str, eps: float, n_target_classes: int, n_iter: int, alpha_max: float, eta: float,
                   beta: float) -> float:
    """Validates a FAB-T run's settings (one-line ConfigError); returns eps as a float."""
    if norm not in NORMS:
        raise ConfigError(f"FAB-T norm must be 'linf' or 'l2'. Received: norm={norm!r}")
    if not (_is_number(eps) and 0 < eps < float("inf")):
        raise ConfigError(f"FAB-T eps must be a positive finite number. Received: eps={eps!r}")
    for name, value in (("n_target_classes", n_target_classes), ("n_iter", n_iter)):
        if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
            raise ConfigError(f"FAB-T {name} must be an int >= 1. Received: {name}={value!r}")
    if not (_is_number(alpha_max) and 0 <= alpha_max <= 1):
        raise ConfigError(f"FAB-T alpha_max must be in [0, 1]. Received: alpha_max={alpha_max!r}")
    if not (_is_number(eta) and 0 < eta < float("inf")):
        raise ConfigError(f"FAB-T eta (overshoot) must be a positive finite number. Received: eta={eta!r}")
    if not (_is_number(beta) and 0 < beta <= 1):
        raise ConfigError(f"FAB-T beta (backward step) must be in (0, 1]. Received: beta={beta!r}")
    return float(eps)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _logits(classifier, x):
    return tf.cast(classifier(x), tf.float32)


def _binary_search(below, size: int, batch):
    """Per row, the last index k in [0, size - 1) where ``below(k)`` holds, assuming it holds up to some index.

    The reference's search: lb = 0, ub = size - 1, ceil(log2(size)) halvings of [lb, ub] at floor((lb + ub) / 2);
    ``below`` maps int32 indices [B] to bool [B]. Index 0 is never tested: it is the answer when nothing holds.
    """
    lb, ub = tf.zeros([batch], tf.int32), tf.fill([batch], size - 1)
    for _ in range(math.ceil(math.log2(size))):
        mid = (lb + ub) // 2
        holds = below(mid)
        lb, ub = tf.where(holds, mid, lb), tf.where(holds, ub, mid)
    return lb


def _at(values, index):
    """values[row, index[row]] for [B, D] values and int [B] index."""
    return tf.gather(values, index, batch_dims=1)


def projection_linf(t, w, b):
    """The smallest-L-inf step d [B, D] with ``w . (t + d) = b`` and ``t + d`` in [0, 1], per row of t, w [B, D], b [B].

    Where the hyperplane lies outside the box, d moves every coordinate with w != 0 to the bound that brings
    ``w . (t + d)`` closest to b (the reference's answer). Coordinates with w == 0 never move.
    """
    size = int(t.shape[1])
    flip = tf.where(tf.reduce_sum(w * t, 1) - b >= 0, 1.0, -1.0)
    w, b = w * flip[:, None], b * flip  # now w . t >= b: the step must lower w . x
    moves = tf.cast(w != 0, w.dtype)
    a = tf.cast(w < 0, w.dtype)  # the bound each coordinate heads for: 0 where w > 0, 1 where w < 0
    corner = (a - t) * moves  # the step to the box corner that lowers w . x the most
    room = a - t * (2 * a - 1)  # distance from t to that bound, per coordinate
    need = b - tf.reduce_sum(w * t, 1)  # the change of w . x the step must make (<= 0)
    lowest = tf.reduce_sum(w * corner, 1)  # the change at the corner: the most the box allows
    room_sorted, order = tf.math.top_k(room, size)  # descending
    w_sorted = tf.gather(tf.abs(w), order, batch_dims=1)
    # A step of L-inf radius lam between the k-th and (k+1)-th largest room changes w . x by sb[k] - s[k] * lam:
    # coordinates 0..k move by lam, the others reach their bound (|w_i| room_i = -w_i corner_i, exactly).
    s = tf.cumsum(w_sorted, axis=1)
    sb = tf.cumsum(w_sorted * room_sorted, axis=1) + lowest[:, None]
    unclipped = need - (sb[:, -1] - s[:, -1] * room_sorted[:, -1]) > 0  # reached before any bound
    searched = (need - lowest > 0) & ~unclipped  # reachable, with some coordinates at their bound
    k = _binary_search(lambda k: need - (_at(sb, k) - _at(s, k) * _at(room_sorted, k)) > 0, size, tf.shape(t)[0])

    lam = tf.maximum((need - sb[:, -1]) / -s[:, -1], 0.0)[:, None]
    step_unclipped = (2 * a - 1) * lam
    lam = tf.maximum((need - _at(sb, k)) / -_at(s, k), 0.0)[:, None]
    step_searched = tf.minimum(lam, corner) * a + tf.maximum(-lam, corner) * (1 - a)
    d = tf.where(unclipped[:, None], step_unclipped, tf.where(searched[:, None], step_searched, corner))
    return d * moves


def projection_l2(t, w, b):
    """The smallest-L2 step d [B, D] with ``w . (t + d) = b`` and ``t + d`` in [0, 1], per row of t, w [B, D], b [B].

    Where the hyperplane lies outside the box, d is :func:`projection_linf`'s box corner. Coordinates with
    |w| <= 1e-8 never move.
    """
    size = int(t.shape[1])
    c = tf.reduce_sum(w * t, 1) - b
    flip = tf.where(c >= 0, 1.0, -1.0)
    w, c = w * flip[:, None], c * flip  # now c >= 0: the step must lower w . x by c
    moves = tf.abs(w) > 1e-8
    safe_w = tf.where(moves, w, 1.0)
    # Along d = -alpha * w, coordinate i reaches its bound at alpha = r_i >= 0 (the reference's clamp to
    # [-1e12, 1e12] never acts for t in [0, 1] and |w| > 1e-8); it never does where w ~ 0.
    r = tf.where(moves, tf.maximum(t / safe_w, (t - 1) / safe_w), 1e12)
    rs, order = tf.math.top_k(-r, size)
    rs = -rs  # ascending
    rs_next = tf.concat([rs[:, 1:], tf.zeros_like(rs[:, :1])], 1)
    rs, rs_next = tf.where(rs == 1e12, 0.0, rs), tf.where(rs_next == 1e12, 0.0, rs_next)
    w_sq_sorted = tf.gather(tf.square(w), order, batch_dims=1)
    w_sq = tf.reduce_sum(tf.square(w), 1, keepdims=True)
    w_sq_free = w_sq - tf.cumsum(w_sq_sorted, axis=1)  # squared norm of w over the coordinates still free
    corner = tf.where(moves, -r * w, 0.0)
    # s[:, k]: the change of w . x at alpha = rs[:, k] (k = 0 .. D - 1).
    s = tf.concat([-w_sq * rs[:, :1], tf.cumsum((rs - rs_next) * w_sq_free, axis=1) - w_sq * rs[:, :1]], 1)
    unclipped = s[:, 0] + c < 0  # reached before any coordinate hits its bound
    unreachable = tf.reduce_sum(corner * w, 1) + c > 0
    k = _binary_search(lambda k: _at(s, k) + c > 0, size, tf.shape(t)[0])

    step_unclipped = -(c[:, None] / w_sq) * w
    free_at_k = _at(w_sq_free, k)
    alpha = tf.where(free_at_k == 0, 0.0, (_at(s, k) + c) / free_at_k + _at(rs, k))[:, None]
    step_searched = tf.where(alpha > r, corner, -alpha * w)
    d = tf.where(unclipped[:, None], step_unclipped, tf.where(unreachable[:, None], corner, step_searched))
    return tf.where(moves, d, 0.0)


def _compiled(classifier, norm, eps, n_iter, alpha_max, eta, beta, image_shape):
    """The traced ``n_iter``-step FAB-T run for (classifier, settings, image shape), cached like tfadv.attacks' PGD
    loop; its batch dimension is None, so batches of any size reuse one trace."""
    settings = (norm, eps, n_iter, alpha_max, eta, beta, image_shape)
    found = _LOOPS.find(classifier, settings)
    if found is not None:
        return found
    project = projection_linf if norm == "linf" else projection_l2

    def flat_norm(v):
        return tf.reduce_max(tf.abs(v), 1) if norm == "linf" else tf.sqrt(tf.reduce_sum(tf.square(v), 1))

    def images(flat):
        return tf.reshape(flat, [-1, *image_shape])

    def predict(flat):
        return tf.argmax(_logits(classifier, images(flat)), -1, output_type=tf.int32)

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.float32), tf.TensorSpec([None], tf.int32),
                                  tf.TensorSpec([None], tf.int32)])
    def run(x, labels, targets):
        """(x_adv, fooled) after one FAB-T run from the clean images towards ``targets``."""
        batch = tf.shape(x)[0]
        x0 = tf.reshape(x, [-1, math.prod(image_shape)])  # static D: the projections' searches need it

        def margin_and_grad(x1):
            with tf.GradientTape() as tape:
                tape.watch(x1)
                logits = _logits(classifier, images(x1))
                margin = tf.gather(logits, targets, batch_dims=1) - tf.gather(logits, labels, batch_dims=1)
                total = tf.reduce_sum(margin)  # inside the tape: its gradient is every image's own
            return margin, tape.gradient(total, x1)

        def step(i, x1, best, best_norm):
            margin, w = margin_and_grad(x1)
            b = tf.reduce_sum(w * x1, 1) - margin  # the linearised boundary: w . x = b
            d = project(tf.concat([x1, x0], 0), tf.concat([w, w], 0), tf.concat([b, b], 0))
            d1, d2 = d[:batch], d[batch:]
            a1, a2 = tf.maximum(flat_norm(d1), 1e-8), tf.maximum(flat_norm(d2), 1e-8)
            alpha = tf.clip_by_value(a1 / (a1 + a2), 0.0, alpha_max)[:, None]
            x1 = tf.clip_by_value((x1 + eta * d1) * (1 - alpha) + (x0 + eta * d2) * alpha, 0.0, 1.0)
            misclassified = predict(x1) != labels
            dist = flat_norm(x1 - x0)
            closer = misclassified & (dist < best_norm)
            best = tf.where(closer[:, None], x1, best)
            best_norm = tf.where(closer, dist, best_norm)
            x1 = tf.where(misclassified[:, None], x0 + (x1 - x0) * beta, x1)
            return i + 1, x1, best, best_norm

        start = (tf.constant(0), x0, x0, tf.fill([batch], float("inf")))
        _, _, best, _ = tf.while_loop(lambda i, *_: i < n_iter, step, start)
        fooled = (predict(best) != labels) & (flat_norm(best - x0) <= eps)
        return images(best), fooled

    return _LOOPS.keep(classifier, settings, run)
