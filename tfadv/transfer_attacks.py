"""The iterative attacks that the transfer-attack literature uses as baselines: MI-FGSM, DI-FGSM and TI-DIM.

    x_adv = mi_fgsm(classifier, x, labels, eps=8 / 255, steps=10, decay=1.0)
    x_adv = di_fgsm(classifier, x, labels, eps=8 / 255, diversity_prob=0.5, translation_kernel=7, seed=0)

``classifier`` is any callable images -> logits (a Keras model taking float32
NHWC images in [0, 1]); ``x`` a batch [B, H, W, C] in [0, 1] (numpy or
tensor); ``labels`` the true classes [B]. Both attacks are untargeted: they
ascend the softmax cross-entropy of the true labels, from ``x`` itself (no
random start), for a fixed number of steps, and return a float32 tensor.

* :func:`mi_fgsm`: momentum iterative FGSM (Dong et al. 2018, "Boosting
  Adversarial Attacks with Momentum", CVPR). Each step accumulates the
  gradient normalised by its per-example mean absolute value into a
  velocity ``g <- decay * g + grad / mean|grad|`` and moves by
  ``step_size * sign(g)`` (L-inf) or ``step_size * g / ||g||_2`` (L2).
  ``decay=0`` is the basic iterative method (BIM, Kurakin et al. 2017).
* :func:`di_fgsm`: the same momentum attack on randomly transformed inputs
  (Xie et al. 2019, "Improving Transferability of Adversarial Examples with
  Input Diversity", CVPR: M-DI2-FGSM); with ``translation_kernel=k`` the
  gradient is also smoothed by a k x k Gaussian before the momentum update,
  which is TI-DIM (Dong et al. 2019, "Evading Defenses to Transferable
  Adversarial Examples by Translation-Invariant Attacks", CVPR).

Normalisation of the momentum: the paper writes ``grad / ||grad||_1``; the
authors' reference code (and TI-DIM's) divides by the mean absolute value,
which is the L1 norm over n = H*W*C pixels divided by n. The factor n is the
same at every step, so the velocity is the paper's times n and its sign (L-inf
step) and its direction (L2 step) are identical. ART's
``MomentumIterativeMethod`` (1.20.1, NumPy path) divides by the L1 norm:
``tests/test_transfer_attacks.py`` checks that :func:`mi_fgsm` matches it.

Budget guarantee: every returned ``x_adv`` lies within eps of ``x`` in the
attack's norm (``||x_adv - x||_p <= eps`` per example, exactly, checked in
float64 by the tests) and in [0, 1]: after every step the perturbation is
projected onto the eps-ball by :func:`tfadv.budgets.constrain` and the image
clipped to [0, 1], which only shrinks each component.

The step loop runs in one ``tf.function`` per (classifier, settings), reused
across batches and seeds.
"""

import math

import numpy as np
import tensorflow as tf

from tfadv.compiled import CompiledLoops
from tfadv.budgets import check_budget, constrain, per_example_norm
from tfadv.errors import ConfigError, InputError
from tfadv.inputs import check_images


def mi_fgsm(classifier, x, labels, *, eps: float, norm: str = "linf", steps: int = 10, decay: float = 1.0,
            step_size: float | None = None):
    """Momentum iterative FGSM (MI-FGSM, Dong et al. 2018), untargeted, from x.

    Args:
        classifier: images -> logits.
        x: clean images [B, H, W, C] in [0, 1] (else InputError); labels: int [B], the true classes.
        eps, norm: the budget ("linf" or "l2"), measured on [0, 1] images.
        steps: iterations (>= 1); step_size: per-step move, default eps / steps (the paper's alpha = eps / T).
        decay: the momentum mu (>= 0); 0 gives the basic iterative method (BIM).

    Each step: ``g <- decay * g + grad / mean|grad|`` (per example; the reference code's normalisation, equal to
    the paper's and ART's ``grad / ||grad||_1`` up to the constant factor H*W*C, so the steps are the same),
    then ``x_adv <- clip(x + project(x_adv + step_size * sign(g) - x), 0, 1)`` (L2: ``g / ||g||_2``).

    Returns:
        float32 x_adv with ``||x_adv - x||_p <= eps`` per example and values in [0, 1].
    """
    eps, steps, decay, alpha = _check_settings(eps, norm, steps, decay, step_size)
    x, labels = _check_inputs(x, labels)
    run = _compiled(classifier, x.shape[1:], eps, norm, steps, decay, alpha, 0.0, None, 0)
    return run(x, labels, tf.constant([0, 0], tf.int64))


def di_fgsm(classifier, x, labels, *, eps: float, norm: str = "linf", steps: int = 10, decay: float = 1.0,
            diversity_prob: float = 0.5, resize_max: int | None = None, translation_kernel: int = 0,
            step_size: float | None = None, seed: int = 0):
    """Momentum iterative FGSM with input diversity (M-DI2-FGSM, Xie et al. 2019); TI-DIM with a kernel.

    Args:
        classifier, x, labels, eps, norm, steps, decay, step_size: as :func:`mi_fgsm`.
        diversity_prob: probability p in [0, 1] that an iteration's gradient is taken on a transformed batch
            (else on the batch itself). The transform, one random draw for the whole batch per iteration as
            in the reference code: resize (nearest neighbour) to a random size rnd x rnd with rnd uniform in
            [H, resize_max), zero-pad at a random place to resize_max x resize_max, then resize (bilinear)
            back to H x W. The last resize is a deviation from the paper, which feeds the padded 330 x 330
            image to an Inception network that accepts any size: it lets a Keras model with a fixed input shape
            take the transformed batch. Non-square images: the width follows the same ratio,
            round(rnd * W / H) in a canvas round(resize_max * W / H) wide.
        resize_max: the padded size (an int > H); default ceil(1.1 H) + 1, the paper's 299 -> 330.
        translation_kernel: 0 (off) or an odd k >= 1: the gradient is convolved per channel with a normalised
            k x k Gaussian (the reference ``gkern(k, nsig=3)``: the standard normal density at
            linspace(-3, 3, k), outer product, divided by its sum) before the momentum normalisation: TI-DIM
            (Dong et al. 2019).
        seed: the random draws are stateless (``tf.random.stateless_*``) from (seed, iteration): the same seed
            gives the same x_adv.

    Returns:
        float32 x_adv with ``||x_adv - x||_p <= eps`` per example and values in [0, 1].
    """
    eps, steps, decay, alpha = _check_settings(eps, norm, steps, decay, step_size)
    try:
        diversity_prob = float(diversity_prob)
    except (TypeError, ValueError):
        raise ConfigError(f"diversity_prob must be a number in [0, 1]. Received: diversity_prob={diversity_prob!r}"
                          ) from None
    if not 0.0 <= diversity_prob <= 1.0:
        raise ConfigError(f"diversity_prob must be in [0, 1]. Received: diversity_prob={diversity_prob!r}")
    if isinstance(translation_kernel, bool) or not isinstance(translation_kernel, (int, np.integer)) \
            or translation_kernel < 0 or (translation_kernel > 0 and translation_kernel % 2 == 0):
        raise ConfigError("translation_kernel must be 0 (off) or an odd int >= 1. "
                          f"Received: translation_kernel={translation_kernel!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an int. Received: seed={seed!r}")
    x, labels = _check_inputs(x, labels)
    height = x.shape[1]
    if height is None or x.shape[2] is None:
        raise InputError(f"x must have a known height and width for input diversity; got shape {x.shape}.")
    if resize_max is None:
        resize_max = default_resize_max(height)
    elif isinstance(resize_max, bool) or not isinstance(resize_max, (int, np.integer)) or resize_max <= height:
        raise ConfigError(f"resize_max must be an int > the image height {height}. Received: resize_max={resize_max!r}")
    run = _compiled(classifier, x.shape[1:], eps, norm, steps, decay, alpha, diversity_prob, int(resize_max),
                    int(translation_kernel))
    return run(x, labels, tf.constant([int(seed), 0], tf.int64))


def gaussian_kernel(size: int, nsig: float = 3.0) -> np.ndarray:
    """TI's ``gkern``: the standard normal density at ``linspace(-nsig, nsig, size)``, outer product, summing to 1."""
    points = np.linspace(-nsig, nsig, size)
    pdf = np.exp(-0.5 * points**2) / math.sqrt(2.0 * math.pi)
    kernel = np.outer(pdf, pdf)
    return (kernel / kernel.sum()).astype(np.float32)


def _check_settings(eps, norm, steps, decay, step_size):
    """The one-line ConfigErrors of the shared settings; returns (eps, steps, decay, step size) as Python numbers."""
    eps = check_budget(norm, eps)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps must be an int >= 1. Received: steps={steps!r}")
    try:
        decay = float(decay)
    except (TypeError, ValueError):
        raise ConfigError(f"decay must be a number >= 0. Received: decay={decay!r}") from None
    if not 0.0 <= decay < float("inf"):
        raise ConfigError(f"decay must be finite and >= 0. Received: decay={decay!r}")
    alpha = eps / int(steps) if step_size is None else step_size
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise ConfigError(f"step_size must be a number > 0. Received: step_size={step_size!r}") from None
    if not 0.0 < alpha < float("inf"):
        raise ConfigError(f"step_size must be finite and > 0. Received: step_size={step_size!r}")
    return eps, int(steps), decay, alpha


def _check_inputs(x, labels):
    x = check_images(x, name="x")
    labels = tf.cast(labels, tf.int32)
    if labels.shape.rank != 1 or (labels.shape[0] is not None and x.shape[0] is not None
                                  and labels.shape[0] != x.shape[0]):
        raise InputError(f"labels must be one int per image: shape [{x.shape[0]}]; got {labels.shape}.")
    return x, labels


def default_resize_max(height: int) -> int:
    """The padded size of input diversity: ceil(1.1 H) + 1, the paper's 299 -> 330 (in integers)."""
    return -(-11 * height // 10) + 1


def input_diversity(images, seed, prob: float, resize_max: int | None = None):
    """Xie et al.'s input diversity on a batch (see :func:`di_fgsm`): with probability ``prob`` (one draw for the
    batch, stateless from ``seed``, an int32 [2] tensor) the batch resized and padded at a random place, then
    resized back to its size; else the batch unchanged. Transfer generators train with it too
    (:mod:`tfadv.trainers.transfer`)."""
    return _diverse(images, seed, prob, resize_max or default_resize_max(images.shape[1]))


def _diverse(images, seed, prob, resize_max):
    """Xie et al.'s transform, with probability ``prob`` (one draw per batch): random nearest-neighbour resize to
    [H, resize_max), random zero padding to resize_max, bilinear resize back to H x W (see :func:`di_fgsm`)."""
    if prob <= 0.0:
        return images
    height, width = images.shape[1], images.shape[2]
    canvas_w = (resize_max * width + height // 2) // height
    apply_seed, size_seed, top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))

    def transform():
        rnd = tf.random.stateless_uniform([], size_seed, height, resize_max, tf.int32)
        rnd_w = (rnd * width + height // 2) // height
        resized = tf.image.resize(images, tf.stack([rnd, rnd_w]), method="nearest")
        rem_h, rem_w = resize_max - rnd, canvas_w - rnd_w
        top = tf.random.stateless_uniform([], top_seed, 0, rem_h, tf.int32)  # [0, rem): as the reference code
        left = tf.random.stateless_uniform([], left_seed, 0, tf.maximum(rem_w, 1), tf.int32)
        padded = tf.pad(resized, [[0, 0], [top, rem_h - top], [left, rem_w - left], [0, 0]])
        back = tf.image.resize(padded, [height, width], method="bilinear")
        return tf.ensure_shape(tf.cast(back, images.dtype), images.shape)

    if prob >= 1.0:
        return transform()
    return tf.cond(tf.random.stateless_uniform([], apply_seed) < prob, transform, lambda: images)


_LOOPS = CompiledLoops()


def _compiled(classifier, image_shape, eps, norm, steps, decay, alpha, prob, resize_max, kernel_size):
    """One traced attack loop per (classifier, image shape, settings), reused across batches and seeds (the
    image shape is part of the key: the transform and the kernel need a static height, width and channel count)."""
    settings = (tuple(image_shape), eps, norm, steps, decay, alpha, prob, resize_max, kernel_size)
    found = _LOOPS.find(classifier, settings)
    if found is not None:
        return found

    @tf.function(reduce_retracing=True)
    def run(x, labels, seed):
        rank = len(x.shape)
        per_example = tf.concat([tf.shape(x)[:1], tf.ones([rank - 1], tf.int32)], 0)
        pixel_axes = list(range(1, rank))
        if kernel_size > 0:
            channels = x.shape[-1]
            smoothing = tf.constant(np.tile(gaussian_kernel(kernel_size)[:, :, None, None], [1, 1, channels, 1]))

        def project(x_adv):
            return tf.clip_by_value(x + constrain(x_adv - x, norm, eps, "project"), 0.0, 1.0)

        def step(i, x_adv, velocity):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                inputs = _diverse(x_adv, tf.random.experimental.stateless_fold_in(seed, i), prob, resize_max)
                logits = tf.cast(classifier(inputs), tf.float32)
                value = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            grad = tape.gradient(value, x_adv)
            grad = tf.where(tf.math.is_finite(grad), grad, tf.zeros_like(grad))
            if kernel_size > 0:
                grad = tf.nn.depthwise_conv2d(grad, smoothing, strides=[1, 1, 1, 1], padding="SAME")
            scale = tf.reduce_mean(tf.abs(grad), axis=pixel_axes, keepdims=True)
            velocity = decay * velocity + grad / tf.where(scale > 0, scale, tf.ones_like(scale))
            if norm == "linf":
                update = tf.sign(velocity)
            else:
                size = tf.reshape(per_example_norm(velocity, "l2"), per_example)
                update = velocity / tf.where(size > 0, size, tf.ones_like(size))
            return i + 1, project(x_adv + alpha * update), velocity  # ascend the cross-entropy

        _, x_adv, _ = tf.while_loop(lambda i, *_: i < steps, step, (tf.constant(0), x, tf.zeros_like(x)))
        return x_adv

    return _LOOPS.keep(classifier, settings, run)
