"""The Square attack (Andriushchenko et al. 2020), score-based, as AutoAttack's ``version='standard'`` runs it.

    x_adv = square(classifier, x, labels, norm="linf", eps=0.1)              # 5000 queries, p_init 0.8

Follows the reference implementation (fra31/auto-attack, ``square.py``, built by ``autoattack.py`` as
``SquareAttack(p_init=.8, n_queries=5000, n_restarts=1, resc_schedule=False)``, margin loss) for L-inf and L2:

* only the images the classifier gets right are attacked; the others come back unchanged;
* start: L-inf, vertical stripes ``x + eps * sign`` with one sign per image, column and channel; L2, a grid of
  ``h // 5``-pixel cells from the border ``(h - 5 (h // 5)) // 2``, each the two-rectangle pattern ``eta`` (randomly
  transposed, shared by the batch) times a sign per image and channel, the whole scaled to norm eps;
* iteration i (0-based) uses ``p = p_init / 2^k``, k the number of the thresholds 10, 50, 200, 500, 1000, 2000,
  4000, 6000, 8000 that i exceeds (the unrescaled schedule), and a square of side ``round(sqrt(p h w))`` (Python's
  rounding), at least 1 (L-inf) or 3 and odd (L2), at most ``min(h, w)``, at a corner ``floor(u (h - s))`` drawn
  once per iteration for the whole batch;
* L-inf: the square adds ``2 eps`` times one sign per channel (also shared by the batch), then the image is
  projected back into the ball and [0, 1];
* L2: a second window of the same side is drawn; the first window's perturbation becomes ``eta`` (randomly
  transposed, batch-shared) times a sign per image and channel plus the old window content normalised, scaled
  per channel so that it takes the norm of both windows plus the unused budget, the rest of the second window
  is zeroed, and the whole perturbation is rescaled to norm eps before clipping to [0, 1];
* margin loss ``z_y - max_{k != y} z_k``; a proposal is accepted if it lowers the margin or misclassifies; an image
  stops (and keeps its image) once its margin is <= 0; one query for the start plus one per iteration while the
  image is still unfooled, ``n_queries`` iterations at most.

A prior start (``x_init``, not in the reference): the iterations can start from given images instead, e.g. a
generator's adversarial images x_hat, as query-based attacks with a learned prior do (TREMBA, Huang & Zhang 2020;
Simulator Attack, Ma et al. 2021). ``x_init`` is projected into the ``norm`` ball of radius eps around ``x`` (L-inf:
clipped to ``x +- eps``; L2: scaled by ``min(1, eps / ||x_init - x||)``) and into [0, 1], the formulas the steps use,
so an image already inside both comes in unchanged; non-finite pixels are taken from ``x``. The start costs one
query, as the reference start does; the generator's own forward pass is not a classifier query and is not counted.

Queries to success (``return_queries=True``): the loop records per image the iteration at which its margin first
became <= 0 (state alongside the images; it changes neither the accepted proposals nor the random stream, so the
images are those of ``return_queries=False``). An image fooled by its start took 1 query, one fooled at iteration
i (0-based) i + 2; images misclassified clean (not attacked) get 0, images unfooled after ``n_queries`` iterations
-1. The clean check before the attack is not counted. :func:`query_curve` turns the counts into success rates at
query budgets and the median queries to success.

Images the reference cannot handle get a defined result here: the L2 start clips grid cells that run past the
image (the reference fails when h is not 5 k, 5 k + 1 or 5 k + 2 times the cell size) and uses cells of at least
one pixel (it divides by zero below 5 pixels). Unfooled images come back as the best image found, where the
reference returns the clean image (both are classified correctly).

What differs is the random stream: PyTorch's cannot be reproduced, so every draw is a stateless TensorFlow op
keyed by ``seed`` and the iteration; per-image draws are keyed by the image's position among the attacked ones as
well, so an image's course does not depend on which other images are still being attacked. The same seed gives the
same result.

Speed: the iterations run in one ``tf.while_loop`` inside a ``tf.function`` (traced once per classifier and
settings); fooled images stay in the batch, masked, until a tenth of it is fooled, then the loop returns and
restarts on the images still unfooled, so at most ~10% of the queries go to fooled images. The forward pass is
nearly all of a query's cost (a small CNN on 500 images: ~280 ms against ~2 ms for the proposals), so the loop is
not XLA-compiled: measured on CPU, XLA's fusion of the proposals saved nothing visible on a CNN and cost a compile
per batch size.
"""

import math

import numpy as np
import tensorflow as tf

from tfadv.compiled import CompiledLoops
from tfadv.errors import ConfigError

NORMS = ("linf", "l2")
P_THRESHOLDS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # p halves after each of these iterations
_NEVER = np.iinfo(np.int32).max  # the loop's "first fooled at" of an image not fooled (yet)
_LOOPS = CompiledLoops()


def check_settings(norm: str, eps: float, n_queries: int, p_init: float) -> float:
    """Validates a Square run's settings (one-line ConfigError); returns eps as a float."""
    if norm not in NORMS:
        raise ConfigError(f"Square norm must be 'linf' or 'l2'. Received: norm={norm!r}")
    if not (isinstance(eps, (int, float)) and 0 < eps < float("inf")):
        raise ConfigError(f"Square eps must be a positive finite number. Received: eps={eps!r}")
    if not (isinstance(n_queries, int) and n_queries >= 1):
        raise ConfigError(f"Square n_queries must be an int >= 1. Received: n_queries={n_queries!r}")
    if not (isinstance(p_init, (int, float)) and 0 < p_init <= 1):
        raise ConfigError(f"Square p_init must be in (0, 1]. Received: p_init={p_init!r}")
    return float(eps)


def square_side(p: float, norm: str, h: int, w: int, c: int) -> int:
    """The side of the squares when they cover about a fraction ``p`` of an ``h`` x ``w`` x ``c`` image."""
    s = int(round(math.sqrt(p * (c * h * w) / c)))
    if norm == "linf":
        s = max(s, 1)
    else:
        s = max(s, 3)
        s += s % 2 == 0
    return min(s, min(h, w))


def _eta_rectangles(rows: int, cols: int) -> np.ndarray:
    """Concentric rectangles weighted 1 / (k + 1)^2 from the centre out, unit L2 norm (the reference's helper)."""
    delta = np.zeros((rows, cols))
    r, c = rows // 2, cols // 2
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
        delta[max(r - k, 0):min(r + k + 1, rows), max(c - k, 0):min(c + k + 1, cols)] += 1 / (k + 1) ** 2
    return delta / np.sqrt(np.sum(delta ** 2))


def eta(s: int) -> np.ndarray:
    """The L2 square's pattern before its random transposition: rectangles on the top half, negated ones below."""
    delta = np.concatenate([_eta_rectangles(s // 2, s), -_eta_rectangles(s - s // 2, s)])
    return delta / np.sqrt(np.sum(delta ** 2))


def square(classifier, x, labels, *, norm: str, eps: float, n_queries: int = 5000, p_init: float = 0.8,
           seed: int = 0, x_init=None, return_queries: bool = False):
    """Square attack on ``classifier`` (float32 NHWC images in [0, 1] -> logits [N, K]; scores only).

    ``x``: float32 [N, H, W, C] in [0, 1]; ``labels``: int [N]. Returns x_adv (float32 tensor): for fooled images
    the adversarial image, for the others the best image found (clean if misclassified to begin with), each
    within ``eps`` of ``x`` in ``norm`` (up to float32 rounding) and in [0, 1].

    ``x_init``: optional float32 [N, H, W, C] start images (a learned prior, e.g. a generator's x_hat), projected
    into the ball and [0, 1] and used instead of the reference's stripes / grid start (see the module doc).
    ``return_queries``: return ``(x_adv, queries)``, queries an int32 numpy array [N] of classifier queries to
    first misclassification (start = 1; 0 not attacked; -1 never fooled); see :func:`query_curve`.
    """
    eps = check_settings(norm, eps, n_queries, p_init)
    x, labels = tf.convert_to_tensor(x, tf.float32), tf.cast(labels, tf.int32)
    if x_init is not None:
        x_init = tf.convert_to_tensor(x_init, tf.float32)
        if tuple(x_init.shape) != tuple(x.shape):
            raise ConfigError(f"Square x_init must have the shape of x. Received: x_init.shape="
                              f"{tuple(x_init.shape)}, x.shape={tuple(x.shape)}")
    queries = np.zeros(len(labels), np.int32)
    attacked = tf.where(margin(_logits(classifier, x), labels) > 0)[:, 0]  # the reference: argmax == label
    if int(tf.size(attacked)) == 0:
        return (x, queries) if return_queries else x
    x_att, y_att = tf.gather(x, attacked), tf.gather(labels, attacked)
    seed = tf.constant([seed, 0], tf.int32)
    if x_init is None:
        best = _start(x_att, norm, eps, seed)
    else:
        best = project(x_att, tf.gather(x_init, attacked), norm, eps)
    best, fooled_at = _iterate(classifier, x_att, y_att, best, norm, eps, float(p_init), n_queries, seed)
    x_adv = tf.tensor_scatter_nd_update(x, attacked[:, None], best)
    if not return_queries:
        return x_adv
    fooled_at = fooled_at.numpy()
    queries[attacked.numpy()] = np.where(fooled_at == _NEVER, -1, fooled_at + 2)  # start (-1): 1, iteration i: i + 2
    return x_adv, queries


def project(x, x_init, norm, eps):
    """``x_init`` moved into the ``norm`` ball of radius ``eps`` around ``x`` and into [0, 1] (non-finite pixels
    from ``x``), with the steps' formulas: an image already inside both is returned unchanged."""
    x_init = tf.where(tf.math.is_finite(x_init), x_init, x)
    if norm == "linf":
        return tf.clip_by_value(tf.clip_by_value(x_init, x - eps, x + eps), 0.0, 1.0)
    delta = x_init - x
    return tf.clip_by_value(x + delta * tf.minimum(1.0, eps / (_norms(delta) + 1e-30)), 0.0, 1.0)


def query_curve(queries, budgets=(10, 100, 1000)) -> dict:
    """Success against query budgets from :func:`square`'s ``queries`` (0 not attacked, -1 never fooled).

    Rates are over the attacked images (queries != 0: those the classifier got right when clean), None if none:
    ``{"attacked": n, "success_at": {b: share with 0 < queries <= b}, "success": share fooled at all,
    "median_queries": median of queries over the fooled images (None if none)}``.
    """
    queries = np.asarray(queries)
    attacked, fooled = int(np.sum(queries != 0)), queries[queries > 0]

    def rate(count):
        return float(count) / attacked if attacked else None

    return {"attacked": attacked, "success_at": {b: rate(np.sum(fooled <= b)) for b in budgets},
            "success": rate(len(fooled)), "median_queries": float(np.median(fooled)) if len(fooled) else None}


def _iterate(classifier, x, labels, best, norm, eps, p_init, n_queries, seed):
    """The query loop from the starting images ``best``: compiled runs, each on the images still unfooled.

    Returns the images and, per image, the iteration at which it was first fooled (-1: by the start; _NEVER:
    not within ``n_queries`` iterations).
    """
    best_margin = margin(_logits(classifier, best), labels)
    fooled_at = tf.where(best_margin > 0, _NEVER, -1)
    population = tf.constant(len(labels), tf.int32)
    i, stop = tf.constant(0, tf.int32), tf.constant(n_queries, tf.int32)
    while int(i) < n_queries:
        idx = tf.where(best_margin > 0)[:, 0]
        if int(tf.size(idx)) == 0:
            break
        run = _compiled(classifier, norm, eps, p_init, tuple(x.shape[1:]))
        i, best_idx, margin_idx, fooled_idx = run(
            tf.gather(x, idx), tf.gather(labels, idx), tf.cast(idx, tf.int32), tf.gather(best, idx),
            tf.gather(best_margin, idx), tf.gather(fooled_at, idx), i, stop, seed, population)
        best = tf.tensor_scatter_nd_update(best, idx[:, None], best_idx)
        best_margin = tf.tensor_scatter_nd_update(best_margin, idx[:, None], margin_idx)
        fooled_at = tf.tensor_scatter_nd_update(fooled_at, idx[:, None], fooled_idx)
    return best, fooled_at


def margin(logits, labels):
    """The margin loss per image: the label's logit minus the largest other one (<= 0: misclassified)."""
    correct = tf.gather(logits, labels, batch_dims=1)
    others = tf.where(tf.one_hot(labels, tf.shape(logits)[-1]) > 0, -np.inf, logits)
    return correct - tf.reduce_max(others, -1)


def _logits(classifier, x):
    return tf.cast(classifier(x), tf.float32)


def _signs(shape, key):
    """The reference's ``random_choice``: sign(2 u - 1), u uniform in [0, 1)."""
    return tf.sign(2.0 * tf.random.stateless_uniform(shape, key) - 1.0)


def _start(x, norm, eps, seed):
    """The reference's starting images: L-inf vertical stripes, L2 the grid of ``eta`` cells, within the budget."""
    n, h, w, c = x.shape
    key_pattern, key_signs = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if norm == "linf":
        return tf.clip_by_value(x + eps * _signs([n, 1, w, c], key_signs), 0.0, 1.0)
    s = max(h // 5, 1)
    corner = (h - 5 * s) // 2
    cells = [(corner + a * s, corner + b * s) for a in range(h // s) for b in range(w // s)]
    transposed = tf.random.stateless_uniform([len(cells)], key_pattern).numpy() > 0.5
    pattern, cell_of = np.zeros((h, w), np.float32), np.full((h, w), len(cells))
    for k, (top, left) in enumerate(cells):
        cell = eta(s).T if transposed[k] else eta(s)
        part = cell[:max(min(s, h - top), 0), :max(min(s, w - left), 0)]
        pattern[top:top + part.shape[0], left:left + part.shape[1]] = part
        cell_of[top:top + part.shape[0], left:left + part.shape[1]] = k
    signs = tf.concat([_signs([n, len(cells), c], key_signs), tf.zeros([n, 1, c])], 1)  # last: outside all cells
    delta = pattern[None, :, :, None] * tf.gather(signs, cell_of, axis=1)
    return tf.clip_by_value(x + eps * delta / (_norms(delta) + 1e-12), 0.0, 1.0)


def _norms(delta):
    """Per-image L2 norm, shaped [N, 1, 1, 1]."""
    return tf.sqrt(tf.reduce_sum(tf.square(delta), [1, 2, 3], keepdims=True))


def _window(top, left, s, h, w):
    """[h, w, 1] mask of the s x s square at (top, left)."""
    rows, cols = tf.range(h), tf.range(w)
    inside_rows = tf.cast((rows >= top) & (rows < top + s), tf.float32)
    inside_cols = tf.cast((cols >= left) & (cols < left + s), tf.float32)
    return (inside_rows[:, None] * inside_cols[None, :])[:, :, None]


def _corner(u, s, size):
    """The reference's ``random_int(0, size - s)``: floor(u (size - s)), so never the last position."""
    return tf.cast(u * tf.cast(size - s, tf.float32), tf.int32)


def _draws(key, norm, c, ids, population):
    """Iteration ``key``'s random numbers: uniforms for the places (and L2's transposition), and the signs.

    L-inf: one sign per channel for the whole batch; L2: one per image and channel, the image picked by ``ids``
    (positions among ``population`` images).
    """
    key_place, key_signs = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    if norm == "linf":
        return tf.random.stateless_uniform([2], key_place), _signs([c], key_signs)
    return tf.random.stateless_uniform([5], key_place), tf.gather(_signs(tf.stack([population, c]), key_signs), ids)


def _linf_proposal(x, best, s, u, signs, eps):
    """One square of side ``s`` at a random place, ``+-2 eps`` per channel, projected into the ball and [0, 1]."""
    h, w = x.shape[1:3]
    step = _window(_corner(u[0], s, h), _corner(u[1], s, w), s, h, w) * (2.0 * eps) * signs
    return tf.clip_by_value(tf.clip_by_value(best + step, x - eps, x + eps), 0.0, 1.0)


def _l2_proposal(x, best, s, u, signs, eps, eta_s):
    """The reference's L2 step: new ``eta`` square in window 1, window 2 emptied, budget redistributed.

    ``eta_s``: ``eta(s)`` zero-padded to [s_max, s_max].
    """
    h, w, c = x.shape[1:]
    top, left = _corner(u[0], s, h), _corner(u[1], s, w)
    window_1 = _window(top, left, s, h, w)
    window_2 = _window(_corner(u[2], s, h), _corner(u[3], s, w), s, h, w)
    pattern = tf.where(u[4] > 0.5, tf.transpose(eta_s), eta_s)
    local_rows = tf.clip_by_value(tf.range(h) - top, 0, eta_s.shape[0] - 1)
    local_cols = tf.clip_by_value(tf.range(w) - left, 0, eta_s.shape[0] - 1)
    placed = tf.gather(tf.gather(pattern, local_rows), local_cols, axis=1)[:, :, None] * window_1
    signs = signs[:, None, None, :]

    def window_norms(t):
        return tf.sqrt(tf.reduce_sum(tf.square(t), [1, 2], keepdims=True))

    delta = best - x
    new = placed * signs + delta * window_1 / (1e-12 + window_norms(delta * window_1))
    both = tf.maximum(window_1, window_2)
    new = new / (1e-12 + window_norms(new)) * tf.sqrt(
        tf.maximum(eps ** 2 - tf.square(_norms(delta)), 0.0) / c + tf.square(window_norms(delta * both)))
    delta = delta * (1.0 - both) + new
    return tf.clip_by_value(x + eps * delta / (_norms(delta) + 1e-12), 0.0, 1.0)


def _compiled(classifier, norm, eps, p_init, image_shape):
    """The traced query loop for (classifier, settings, image shape), cached like tfadv.attacks' PGD loop."""
    settings = (norm, eps, p_init, image_shape)
    found = _LOOPS.find(classifier, settings)
    if found is not None:
        return found
    h, w, c = image_shape
    sides = [square_side(p_init / 2 ** k, norm, h, w, c) for k in range(len(P_THRESHOLDS) + 1)]
    s_max = max(sides)
    etas = np.zeros((len(sides), s_max, s_max), np.float32)
    for k, s in enumerate(sides):
        etas[k, :s, :s] = eta(s)
    thresholds, sides, etas = tf.constant(P_THRESHOLDS), tf.constant(sides), tf.constant(etas)

    images, vector = tf.TensorSpec([None, h, w, c], tf.float32), tf.TensorSpec([None], tf.float32)
    scalar = tf.TensorSpec([], tf.int32)

    ints = tf.TensorSpec([None], tf.int32)

    @tf.function(input_signature=[images, ints, ints, images, vector, ints, scalar, scalar,
                                  tf.TensorSpec([2], tf.int32), scalar])
    def run(x, labels, ids, best, best_margin, fooled_at, start, stop, seed, population):
        """Iterations ``start`` .. ``stop - 1`` on these images, until they end or a tenth of them is fooled;
        ``fooled_at``: per image, the iteration that first fooled it (records, never read by the steps)."""
        unfooled = tf.reduce_sum(tf.cast(best_margin > 0, tf.int32))
        exit_at = unfooled - tf.maximum(unfooled // 10, 1)  # then the caller drops the fooled ones

        def step(i, best, best_margin, fooled_at):
            level = tf.reduce_sum(tf.cast(i > thresholds, tf.int32))
            u, signs = _draws(tf.random.experimental.stateless_fold_in(seed, i), norm, c, ids, population)
            if norm == "linf":
                proposal = _linf_proposal(x, best, sides[level], u, signs, eps)
            else:
                proposal = _l2_proposal(x, best, sides[level], u, signs, eps, etas[level])
            new_margin = margin(_logits(classifier, proposal), labels)
            # Margin loss: the reference's loss_min equals margin_min while an image is unfooled.
            accept = (best_margin > 0) & ((new_margin < best_margin) | (new_margin <= 0))
            best = tf.where(accept[:, None, None, None], proposal, best)
            fooled_at = tf.where(accept & (new_margin <= 0), i, fooled_at)  # accepted only while unfooled: first
            return i + 1, best, tf.where(accept, new_margin, best_margin), fooled_at

        def more(i, best, best_margin, fooled_at):
            return (i < stop) & (tf.reduce_sum(tf.cast(best_margin > 0, tf.int32)) > exit_at)

        return tf.while_loop(more, step, (start, best, best_margin, fooled_at))

    return _LOOPS.keep(classifier, settings, run)
