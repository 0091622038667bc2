"""Every AutoAttack stage's images pass through :func:`into_budget` before they count: float64 norms, [0, 1], finite."""

import numpy as np


def into_budget(x, x_adv, norm: str, eps: float) -> np.ndarray:
    """``x_adv`` moved into the ``norm`` ball of radius ``eps`` around ``x`` and into [0, 1], checked in float64.

    Float32 rounding of ``x + delta`` can overshoot the ball by ~1e-7; a slightly smaller radius absorbs it.
    Non-finite pixels are replaced by the clean ones.
    """
    from tfadv.budgets import check_inside_budget  # here: tfadv.autoattack imports without TensorFlow

    x64, adv64 = np.asarray(x, np.float64), np.asarray(x_adv, np.float64)
    adv64 = np.where(np.isfinite(adv64), adv64, x64)
    delta = adv64 - x64
    if norm == "linf":
        delta = np.clip(delta, -eps * (1 - 1e-5), eps * (1 - 1e-5))
    else:
        norms = np.sqrt(np.sum(delta.reshape(len(delta), -1) ** 2, axis=1))
        scale = np.minimum(1.0, eps * (1 - 1e-5) / np.maximum(norms, 1e-12))
        delta = delta * scale.reshape((-1,) + (1,) * (delta.ndim - 1))
    out = np.clip(x64 + delta, 0.0, 1.0).astype(np.float32)
    check_inside_budget("AutoAttack", x, out, norm, eps)
    return out
