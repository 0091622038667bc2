"""Classification terms of the attacks: what "fooling the classifier" means, per example.

Every loss takes logits [B, K] of the frozen classifier on x_hat and returns a
per-example loss [B] that the generator (or an attack) *minimises*. ``LOSSES``
is the registry (``@register_loss``); configs, attacks and trainers look a loss
up there by name. Adding one: a registered function here and its test. A loss
with hyperparameters of its own (cw's margin ``kappa``) registers a settings
dataclass with them; configs give their values in ``loss_settings``.
"""

import dataclasses
import math
from typing import Callable

import tensorflow as tf

from tfadv import config as config_lib
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
    """A registered loss: ``fn(logits, labels, *, clean_logits, target, **settings) -> [B]``, and what it needs.

    ``target``: "none" (untargeted), "required" (needs a target class) or "optional".
    ``needs_clean_logits``: the classifier's logits on the clean images are passed as ``clean_logits``.
    ``settings``: the dataclass of the loss's own hyperparameters (defaults for each; it checks its values in
    ``__post_init__``, raising ConfigError), or None; ``fn`` gets its fields as keyword arguments.
    """

    name: str
    fn: Callable
    target: str = "none"
    needs_clean_logits: bool = False
    settings: type | None = None

    def settings_of(self, values: dict | None = None):
        """``values`` (plain data, e.g. a config's ``loss_settings``) as this loss's settings dataclass, defaults
        filled in, checked; None for a loss without settings (which then takes no values)."""
        values = dict(values or {})
        known = [field.name for field in dataclasses.fields(self.settings)] if self.settings else []
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"Unknown setting(s) {', '.join('loss_settings.' + k for k in unknown)} of loss "
                              f"{self.name!r}; its settings: {', '.join(known) or 'none'} (switching loss, give "
                              "its own: --set loss_settings={} for its defaults).")
        if self.settings is None:
            return None
        for key, value in sorted(values.items()):  # NaN passes every range check: refused before the settings' own
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"loss_settings.{key} must be a finite number. Received: {value!r}")
        return config_lib.from_dict(self.settings, values, _where="loss_settings.")

    def complete(self, values: dict | None = None) -> dict:
        """``values`` checked and with the defaults filled in, as plain data (what a run records)."""
        settings = self.settings_of(values)
        return dataclasses.asdict(settings) if settings is not None else {}


LOSSES = Registry("adversarial loss")
_RESERVED = ("logits", "labels", "clean_logits", "target")


def register_loss(name: str, *, target: str = "none", needs_clean_logits: bool = False, settings: type | None = None):
    """Decorator: registers ``fn`` as adversarial loss ``name`` (the one registration point; configs, attacks
    and trainers find it by name). ``fn(logits, labels, *, clean_logits, target, **settings)`` returns the
    per-example loss [B] to minimise; ``target`` is a [B] int tensor of target classes or None; ``settings`` (a
    dataclass type, every field with a default) are the loss's own hyperparameters, passed to ``fn`` by name."""
    if target not in ("none", "required", "optional"):
        raise ValueError(f"target must be none, required or optional. Received: {target!r}")
    if settings is not None:
        if not isinstance(settings, type) or not dataclasses.is_dataclass(settings):
            raise TypeError(f"Loss {name!r}: settings must be a dataclass type. Received: {settings!r}")
        clashing = [field.name for field in dataclasses.fields(settings) if field.name in _RESERVED]
        if clashing:
            raise TypeError(f"Loss {name!r}: settings may not be named {', '.join(clashing)} (fn's own arguments).")
        settings()  # every field has a default, and the defaults pass its own check

    def register(fn):
        LOSSES.register(name, AdversarialLoss(name, fn, target, needs_clean_logits, settings))
        return fn

    return register


def loss_settings(kind: str, values: dict | None = None) -> dict:
    """The settings of loss ``kind`` from ``values`` (a config's ``loss_settings``): checked (an unknown key or
    a bad value is a ConfigError), with its defaults filled in."""
    return LOSSES.lookup(kind).complete(values)


def has_setting(kind: str, name: str) -> bool:
    """Whether the registered loss ``kind`` has a setting ``name`` (False for a loss not registered)."""
    own = LOSSES[kind].settings if kind in LOSSES else None
    return own is not None and name in {field.name for field in dataclasses.fields(own)}


def fold_old_kappa(fields: dict, *, kappa: str, loss: str, settings: str, default_loss: str) -> dict:
    """``fields`` (a config or saved-trainer dict) with an old top-level C&W margin moved into the loss's settings.

    Before losses had settings of their own, every loss was handed ``fields[kappa]`` and only cw read it. It moves
    into ``fields[settings]`` when the loss named by ``fields[loss]`` (``default_loss`` when absent, the field's
    default then) has a ``kappa`` setting, and is dropped when the loss has none. For a loss not registered (yet)
    a nonzero margin moves too, so the config's check names it if that loss has no such setting. A ``kappa``
    already in the settings wins. Without ``fields[kappa]`` the dict comes back as it is. Used by every
    migration that meets the old field (configs in :mod:`tfadv.experiments`, the co-trained defense's saves).
    """
    if kappa not in fields:
        return fields
    rest = {key: value for key, value in fields.items() if key != kappa}
    name = fields.get(loss, default_loss)
    keep = has_setting(name, "kappa") if name in LOSSES else name != FEATURE_SEPARATION and fields[kappa] != 0
    if keep:
        rest[settings] = {"kappa": fields[kappa], **(fields.get(settings) or {})}
    return rest


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
    """Losses that need neither a target class nor clean logits: what a defense's generator can train with."""
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


@dataclasses.dataclass(frozen=True)
class CWSettings:
    """The Carlini-Wagner loss's own setting: ``kappa``, the confidence margin past which an example stops
    pulling (0: the decision boundary)."""

    kappa: float = 0.0

    def __post_init__(self):
        if not self.kappa >= 0:
            raise ConfigError(f"loss_settings.kappa of loss 'cw' must be >= 0. Received: {self.kappa!r}")


@register_loss("cw", target="optional", settings=CWSettings)
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


def adversarial_loss(kind: str, logits, labels, clean_logits=None, target_class: int | None = None, *,
                     settings: dict | None = None):
    """Per-example loss [B] to minimise: the registered loss ``kind`` (see ``LOSSES``: untargeted, least_likely,
    targeted, cw, and any a user registered) with its ``settings`` (e.g. ``{"kappa": 5.0}`` for cw; missing ones
    take their defaults, an unknown one is a ConfigError)."""
    check_loss(kind, target_class)
    loss = LOSSES[kind]
    if loss.needs_clean_logits and clean_logits is None:
        raise ConfigError(f"loss={kind!r} needs the classifier's logits on the clean images.")
    own = loss.settings_of(settings)
    labels = tf.cast(labels, tf.int32)
    target = tf.fill(tf.shape(labels), target_class) if target_class is not None else None
    return loss.fn(logits, labels, clean_logits=clean_logits, target=target,
                   **({field.name: getattr(own, field.name) for field in dataclasses.fields(own)} if own else {}))
