"""Classification terms of the attacks: what "fooling the classifier" means, per example.

Every loss takes logits [B, K] of the frozen classifier on x_hat and returns a
per-example loss [B] that the generator (or an attack) *minimises*. ``LOSSES``
is the registry (``@register_loss``); configs, attacks and trainers look a loss
up there by name. Adding one: a registered function here and its test.
"""

import dataclasses
from typing import Callable

import tensorflow as tf

from tfadv.errors import ConfigError
from tfadv.registry import Registry

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


@dataclasses.dataclass(frozen=True)
class AdversarialLoss:
    """A registered loss: ``fn(logits, labels, *, clean_logits, target, kappa) -> [B]``, and what it needs.

    ``target``: "none" (untargeted), "required" (needs a target class) or "optional".
    ``needs_clean_logits``: the classifier's logits on the clean images are passed as ``clean_logits``.
    """

    fn: Callable
    target: str = "none"
    needs_clean_logits: bool = False


LOSSES = Registry("adversarial loss")


def register_loss(name: str, *, target: str = "none", needs_clean_logits: bool = False):
    """Decorator: registers ``fn`` as adversarial loss ``name`` (the one registration point; configs, attacks
    and trainers find it by name). ``fn(logits, labels, *, clean_logits, target, kappa)`` returns the per-example
    loss [B] to minimise; ``target`` is a [B] int tensor of target classes or None."""
    if target not in ("none", "required", "optional"):
        raise ValueError(f"target must be none, required or optional. Received: {target!r}")

    def register(fn):
        LOSSES.register(name, AdversarialLoss(fn, target, needs_clean_logits))
        return fn

    return register


def check_loss(kind: str, target_class, num_classes: int | None = None):
    """Validates a loss kind and its target class (required for targeted, optional for cw)."""
    if LOSSES.lookup(kind).target == "required" and target_class is None:
        raise ConfigError(f"loss={kind!r} needs target_class (e.g. target_class=9 to send every image to 9).")
    if target_class is not None:
        if LOSSES[kind].target == "none":
            takers = [name for name, loss in LOSSES.items() if loss.target != "none"]
            raise ConfigError(f"target_class is only used by the {' and '.join(takers)} losses, not {kind!r}.")
        if not isinstance(target_class, int) or target_class < 0 or (num_classes and target_class >= num_classes):
            raise ConfigError(f"target_class must be an int in [0, {num_classes or 'K'}). Received: {target_class!r}")


def untargeted_losses() -> list[str]:
    """Losses that need neither a target class nor clean logits: what a defence's generator can train with."""
    return [name for name, loss in LOSSES.items() if loss.target != "required" and not loss.needs_clean_logits]


@register_loss("untargeted")
def _untargeted(logits, labels, **_):
    """``-log(1 - p_y)``: pushes the true class's probability to 0 (bounded below, unlike ``-CE``, so one easy
    example cannot dominate)."""
    return -log_not_class(logits, labels)


@register_loss("least_likely", needs_clean_logits=True)
def _least_likely(logits, labels, *, clean_logits, **_):
    """Cross-entropy towards the class the classifier ranks lowest on the clean image (GAP's non-targeted loss)."""
    return _cross_entropy(tf.argmin(clean_logits, axis=-1), logits)


@register_loss("targeted", target="required")
def _targeted(logits, labels, *, target, **_):
    """Cross-entropy towards ``target_class``."""
    return _cross_entropy(target, logits)


@register_loss("cw", target="optional")
def _cw(logits, labels, *, target, kappa, **_):
    """Carlini-Wagner margin, ``max(z_y - max_{j!=y} z_j, -kappa)``, or the targeted margin
    ``max(max_{j!=t} z_j - z_t, -kappa)`` with a target class."""
    focus = target if target is not None else labels
    num_classes = tf.shape(logits)[-1]
    focus_logit = tf.gather(logits, focus, batch_dims=1)
    others = tf.reduce_max(tf.where(tf.one_hot(focus, num_classes) > 0, -1e9 * tf.ones_like(logits), logits), -1)
    margin = others - focus_logit if target is not None else focus_logit - others
    return tf.maximum(margin, -kappa)


@register_loss("relativistic_ce", needs_clean_logits=True)
def _relativistic_ce(logits, labels, *, clean_logits, **_):
    """``-CE(z(x_hat) - z(x), argmax z(x))``: CDA's relativistic cross-entropy (Naseer et al. 2019), the loss
    their transferable generators train with. It rewards moving the logits *relative to the clean ones* away from
    the clean prediction, label-free, so a generator learns a shift that does not rest on one model's absolute
    scale. Unbounded below: use it under a norm budget (mode thresholded)."""
    return -_cross_entropy(tf.argmax(clean_logits, axis=-1), logits - clean_logits)


FEATURE_SEPARATION = "feature_separation"  # LTP's mid-layer loss: not a logits loss; tfadv.trainers.transfer


@register_loss("trades_kl", needs_clean_logits=True)
def _trades_kl(logits, labels, *, clean_logits, **_):
    """``-KL(p(x) || p(x_hat))``: moving the prediction away from the clean one, whatever the label (TRADES's
    inner maximisation, Zhang et al. 2019)."""
    return -kl_divergence(clean_logits, logits)


def kl_divergence(reference_logits, logits):
    """``KL(softmax(reference) || softmax(logits))`` per example, from logits (log-softmax: exact, no log 0)."""
    reference = tf.nn.log_softmax(reference_logits, axis=-1)
    return tf.reduce_sum(tf.exp(reference) * (reference - tf.nn.log_softmax(logits, axis=-1)), axis=-1)


def adversarial_loss(kind: str, logits, labels, clean_logits=None, target_class: int | None = None,
                     kappa: float = 0.0):
    """Per-example loss [B] to minimise: the registered loss ``kind`` (see ``LOSSES``: untargeted, least_likely,
    targeted, cw, and any a user registered)."""
    check_loss(kind, target_class)
    loss = LOSSES[kind]
    if loss.needs_clean_logits and clean_logits is None:
        raise ConfigError(f"loss={kind!r} needs the classifier's logits on the clean images.")
    labels = tf.cast(labels, tf.int32)
    target = tf.fill(tf.shape(labels), target_class) if target_class is not None else None
    return loss.fn(logits, labels, clean_logits=clean_logits, target=target, kappa=kappa)
