"""Norm budgets for perturbations: the guarantee every tfadv attack keeps.

For a clean batch ``x`` in [0, 1] and a raw generator output ``raw`` (tanh, in
[-1, 1]), :func:`bounded_perturbation` returns ``x_hat = clip(x + delta, 0, 1)``
where, per example, ``||x_hat - x||_p <= eps`` holds exactly (checked in
float64 by the tests), for L2 and L-inf, whatever ``raw`` holds: huge values,
zeros, NaN or inf.

The bound is met with a margin below eps of 1e-5 relative plus the float32
rounding of ``x + delta`` (2**-24 per pixel): invisible at any practical budget.

Two rules meet the budget (the ``rule`` argument):

* ``"threshold"``: the seed's "thresholding" (approach B, the perturbation
  mode ``"thresholded"``): ``delta = eps * raw / ||raw||_p``, so every
  perturbation uses the whole budget (GAP, Poursaeed et al. 2018).
* ``"project"``: projection onto the ball: shrink only when ``||raw|| > eps``
  (L2), clip to ``[-eps, eps]`` (L-inf). Used by PGD.

(Layers saved before the rename call the first rule ``"scale"`` under a ``mode``
key; :class:`NormBoundedPerturbation` reads them as ``rule="threshold"``.)

Clipping to [0, 1] after adding can only shrink each component of the
perturbation, so it never breaks the bound. All of it is vectorised over the
batch and differentiable (the scaling is part of the graph, not hidden from it).

Measuring figures, images an attack returned are checked the other way round, in
NumPy and float64: :func:`check_inside_budget` (AutoAttack's stages, the transfer
table, the attack strength benchmark) refuses any outside the ball or [0, 1].
"""

import keras
import numpy as np
import tensorflow as tf

from tfadv.errors import ConfigError

NORMS = ("l2", "linf")
RULES = ("threshold", "project")
RENAMED_RULES = {"scale": "threshold"}  # old name -> today's, in layer configs saved before the rename
# Shrink factor that absorbs float32 rounding of the norm and the scaling, so the bound holds exactly.
_SAFETY = 1.0 - 1e-5
# Rounding x + delta to float32 moves each pixel of x_hat in [0, 1] by at most 2**-25; keep that much in
# reserve per pixel (sqrt(n) of it for L2), or a tiny budget on a mid-grey image is overrun by rounding.
_PIXEL_ROUNDING = 2.0**-24
_HALF_UNIT_ROUNDOFF = {tf.float16: 2.0**-11, tf.bfloat16: 2.0**-8}


def check_budget(norm: str, eps, image_shape=None) -> float:
    """Validates a (norm, eps) pair; returns eps as float. eps must be finite and > 0.

    With ``image_shape`` (H, W, C), an absurd budget is refused too: one at
    least the diameter of the image cube [0, 1]^n (1 for L-inf, sqrt(n) for
    L2), which allows any image at all.
    """
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {NORMS}. Received: norm={norm!r}")
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ConfigError(f"eps must be a number. Received: eps={eps!r}") from None
    if not eps > 0 or eps == float("inf"):
        raise ConfigError(f"eps must be finite and > 0. Received: eps={eps!r}")
    if image_shape is not None:
        diameter = 1.0 if norm == "linf" else float(np.sqrt(np.prod(image_shape)))
        if eps >= diameter:
            raise ConfigError(f"eps={eps!r} is absurd for {norm} on {tuple(image_shape)} images in [0, 1]: a "
                              f"budget of {diameter:g} or more allows any image. Received: eps={eps!r}")
    return eps


def per_example_norm(t, norm: str):
    """||t||_p over all axes but the first, in t's dtype: [B, ...] -> [B]."""
    shape = tf.shape(t)
    flat = tf.reshape(t, tf.stack([shape[0], tf.reduce_prod(shape[1:])]))
    if norm == "l2":
        return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1))
    return tf.reduce_max(tf.abs(flat), axis=1)


def _zero_nonfinite(t):
    return tf.where(tf.math.is_finite(t), t, tf.zeros_like(t))


def _per_example(values, like):
    """Reshapes [B] to [B, 1, 1, ...] to broadcast against ``like``."""
    return tf.reshape(values, tf.concat([tf.shape(values), tf.ones([tf.rank(like) - 1], tf.int32)], 0))


def check_rule(rule: str) -> str:
    """``rule`` if it is one of :data:`RULES`; otherwise a ConfigError naming them."""
    if rule not in RULES:
        raise ConfigError(f"rule must be one of {RULES}. Received: rule={rule!r}")
    return rule


def constrain(raw, norm: str, eps: float, rule: str = "threshold"):
    """Maps a raw perturbation to one inside the eps-ball by ``rule`` (see module doc). Non-finite entries
    become 0."""
    eps = check_budget(norm, eps)
    check_rule(rule)
    raw = tf.convert_to_tensor(raw)
    if raw.dtype in _HALF_UNIT_ROUNDOFF:
        # Half precision: constrain in float32 within eps / (1 + u), u the unit roundoff; rounding each entry back
        # grows it by at most (1 + u), so every norm stays within eps. (Sums in float16 overran by 1e-3.)
        unit = _HALF_UNIT_ROUNDOFF[raw.dtype]
        return tf.cast(constrain(tf.cast(raw, tf.float32), norm, eps / (1.0 + unit), rule), raw.dtype)
    raw = _zero_nonfinite(raw)
    pixels = tf.cast(tf.reduce_prod(tf.shape(raw)[1:]), raw.dtype)
    reserve = _PIXEL_ROUNDING * (tf.sqrt(pixels) if norm == "l2" else 1.0)
    limit = tf.maximum(eps * _SAFETY - reserve, 0.0)
    if norm == "linf" and rule == "project":
        return tf.clip_by_value(raw, -limit, limit)
    # ||raw|| = peak * ||raw / peak||: no overflow for huge entries, no underflow for tiny ones.
    peak = tf.maximum(per_example_norm(raw, "linf"), 1e-30)
    size = per_example_norm(raw / _per_example(peak, raw), norm) * peak
    factor = limit / tf.maximum(size, 1e-30)
    if rule == "project":
        factor = tf.minimum(1.0, factor)
    delta = raw * _per_example(factor, raw)
    # Rounding can leave an entry one ulp past the L-inf limit; the L2 safety margin absorbs its rounding.
    return tf.clip_by_value(delta, -limit, limit) if norm == "linf" else delta


def bounded_perturbation(x, raw, norm: str, eps: float, rule: str = "threshold"):
    """Returns ``x_hat = clip(x + constrain(raw, norm, eps, rule), 0, 1)``; ``x`` is clipped to [0, 1] first."""
    x = tf.clip_by_value(_zero_nonfinite(tf.convert_to_tensor(x)), 0.0, 1.0)
    return tf.clip_by_value(x + constrain(raw, norm, eps, rule), 0.0, 1.0)


@keras.saving.register_keras_serializable(package="tfadv")
class NormBoundedPerturbation(keras.layers.Layer):
    """Layer ``[x, raw] -> x_hat`` applying :func:`bounded_perturbation`; the budget lives in its config."""

    def __init__(self, norm="l2", eps=1.0, rule="threshold", **kwargs):
        super().__init__(**kwargs)
        self.eps = check_budget(norm, eps)
        self.norm, self.rule = norm, check_rule(rule)

    def call(self, inputs):
        x, raw = inputs
        return bounded_perturbation(x, raw, self.norm, self.eps, self.rule)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "norm": self.norm, "eps": self.eps, "rule": self.rule}

    @classmethod
    def from_config(cls, config):
        """Also reads a layer saved before the rename (``.keras`` files, preset folders): its ``mode`` is the
        ``rule``, and its ``"scale"`` is ``"threshold"``."""
        config = dict(config)
        rule = config.get("rule", config.pop("mode", "threshold"))
        config["rule"] = RENAMED_RULES.get(rule, rule) if isinstance(rule, str) else rule
        return super().from_config(config)


def perturbation_norms(x, x_adv, norm: str) -> np.ndarray:
    """Per-image ``norm`` ("linf" or "l2") of ``x_adv - x`` in float64: the yardstick of every budget check."""
    delta = (np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)).reshape(len(x), -1)
    return np.abs(delta).max(axis=1) if norm == "linf" else np.sqrt(np.sum(delta ** 2, axis=1))


def check_inside_budget(name: str, x, x_adv, norm: str, eps: float, slack: float = 0.0) -> None:
    """Refuses adversarial images, one line naming ``name``, unless every one is finite, in [0, 1] and within
    ``eps`` (+ ``slack``, for a caller's float32 rounding) of its clean image in ``norm``, measured in float64.

    The one check every figure passes before it counts (AutoAttack's stages, the transfer table, the attack
    strength benchmark): a figure on images outside the budget would measure nothing.
    """
    x_adv = np.asarray(x_adv)
    worst = float(np.max(perturbation_norms(x, x_adv, norm)))
    low, high = float(np.min(x_adv)), float(np.max(x_adv))
    if not (worst <= eps + slack and low >= 0.0 and high <= 1.0 and np.all(np.isfinite(x_adv))):
        raise AssertionError(f"{name} breaks its budget: its images leave the budget ({norm} up to {worst:.6g}, eps "
                             f"{eps:g}) or [0, 1] (pixels in [{low:.4g}, {high:.4g}]).")
