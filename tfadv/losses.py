"""Classification terms of the attacks: what "fooling the classifier" means, per example.

All functions take logits [B, K] of the frozen classifier on x_hat and return a
per-example loss [B] that the generator *minimises*.
"""

import tensorflow as tf

from tfadv.errors import ConfigError

ADVERSARIAL_LOSSES = ("untargeted", "least_likely", "targeted", "cw")


def check_loss(kind: str, target_class, num_classes: int | None = None):
    """Validates a loss kind and its target class (required for targeted, optional for cw)."""
    if kind not in ADVERSARIAL_LOSSES:
        raise ConfigError(f"Unknown adversarial loss {kind!r}. Known losses: {', '.join(ADVERSARIAL_LOSSES)}.")
    if kind == "targeted" and target_class is None:
        raise ConfigError("loss='targeted' needs target_class (e.g. target_class=9 to send every image to 9).")
    if target_class is not None:
        if kind not in ("targeted", "cw"):
            raise ConfigError(f"target_class is only used by the targeted and cw losses, not {kind!r}.")
        if not isinstance(target_class, int) or target_class < 0 or (num_classes and target_class >= num_classes):
            raise ConfigError(f"target_class must be an int in [0, {num_classes or 'K'}). Received: {target_class!r}")


def _cross_entropy(labels, logits):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)


def log_not_class(logits, labels):
    """``log(1 - p_y)`` per example: log-sum-exp of the other classes' logits minus that of all logits.

    Exact at any margin: computing it from ``p_y`` (or clamping ``log p_y``)
    rounds 1 - p_y to 0 once the classifier is confident, where the gradient
    then vanishes (float32: margins above ~16).
    """
    others = tf.where(tf.one_hot(labels, tf.shape(logits)[-1], on_value=True, off_value=False),
                      tf.constant(-float("inf"), logits.dtype), logits)
    return tf.reduce_logsumexp(others, axis=-1) - tf.reduce_logsumexp(logits, axis=-1)


def adversarial_loss(kind: str, logits, labels, clean_logits=None, target_class: int | None = None,
                     kappa: float = 0.0):
    """Per-example loss [B] to minimise.

    * ``untargeted``: ``-log(1 - p_y)``: pushes the true class's probability to 0
      (bounded below, unlike ``-CE``, so one easy example cannot dominate).
    * ``least_likely``: cross-entropy towards the class the classifier ranks
      lowest on the clean image (GAP's non-targeted loss); needs ``clean_logits``.
    * ``targeted``: cross-entropy towards ``target_class``.
    * ``cw``: Carlini-Wagner margin, ``max(z_y - max_{j!=y} z_j, -kappa)``, or the
      targeted margin ``max(max_{j!=t} z_j - z_t, -kappa)`` with a target_class.
    """
    check_loss(kind, target_class)
    labels = tf.cast(labels, tf.int32)
    if kind == "untargeted":
        return -log_not_class(logits, labels)
    if kind == "least_likely":
        if clean_logits is None:
            raise ConfigError("loss='least_likely' needs the classifier's logits on the clean images.")
        return _cross_entropy(tf.argmin(clean_logits, axis=-1), logits)
    targets = tf.fill(tf.shape(labels), target_class) if target_class is not None else None
    if kind == "targeted":
        return _cross_entropy(targets, logits)
    focus = targets if targets is not None else labels  # cw
    num_classes = tf.shape(logits)[-1]
    focus_logit = tf.gather(logits, focus, batch_dims=1)
    others = tf.reduce_max(tf.where(tf.one_hot(focus, num_classes) > 0, -1e9 * tf.ones_like(logits), logits), -1)
    margin = others - focus_logit if targets is not None else focus_logit - others
    return tf.maximum(margin, -kappa)
