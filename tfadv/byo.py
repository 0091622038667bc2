"""Bring your own classifier: load it under tfadv's input contract, check it, attack it.

The contract a target classifier meets (checked up front by :func:`check_classifier`):

- input: float32 NHWC images of the data's size with pixels in [0, 1]. A model that expects 0-255 is wrapped
  with ``pixel_scale=255`` (it multiplies inside), so all preprocessing lives in the model, never in the data;
- output: logits [N, num_classes]. A model whose rows are non-negative and sum to 1 (a final softmax) is
  refused rather than wrapped with ``log``: float32 softmax saturates at 0 / 1, where ``log`` gives -inf or
  zero gradients, so the attack would look weaker than the model deserves (gradient masking). For a .keras
  model, ``strip_softmax=True`` (``--strip_softmax``) removes the final softmax inside the wrapper.

Forms accepted: a ``.keras`` file, a SavedModel directory (``model.export(dir)`` or ``tf.saved_model.save``;
endpoint ``serve`` or ``serving_default``) or a zoo entry name::

    target = byo.load_classifier("my_model.keras", pixel_scale=1.0)
    attack = byo.generator_attack(target, (28, 28, 1), norm="l2", eps=2.4)
    attack.fit(train_ds, epochs=1)
    x_hat = attack(x)
    attack.attacker.save("attacker.keras")
"""

import keras
import numpy as np
import tensorflow as tf

from tfadv.errors import ConfigError, summary
from tfadv.targets import load_target, with_options

RANGE_GAP = 0.3  # accuracy at 0-255 this far above [0, 1] on a probe batch: the model expects 0-255


def load_classifier(target: str, pixel_scale: float = 1.0, zoo_dir: str | None = None, strip_softmax: bool = False):
    """A frozen classifier ([0, 1] images -> logits) from a .keras file, a SavedModel directory or a zoo name.

    ``pixel_scale=255`` wraps a model that expects 0-255 pixels; ``strip_softmax=True`` removes a .keras model's
    final softmax (from the loaded copy, not the file). Check it against your data with :func:`check_classifier`
    (tfadv-attack does).
    """
    return load_target(with_options(target, pixel_scale=pixel_scale, strip_softmax=strip_softmax), zoo_dir)


def check_classifier(classifier, images, labels=None, num_classes: int | None = None, name: str = "target",
                     data_name: str = "the data") -> None:
    """Raises a one-line ConfigError where ``classifier`` breaks the contract on a probe batch.

    Checks, in order: it runs on ``images`` ([0, 1]); it returns [N, num_classes]; the logits are finite; the
    rows are not probabilities; and (with ``labels``) it is not far more accurate on the same images times 255, which
    means it expects 0-255 pixels.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    try:
        outputs = np.asarray(classifier(images))
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - a model of the wrong input size fails in many ways
        raise ConfigError(f"Target {name!r} does not take {data_name} images of shape {tuple(images.shape[1:])} "
                          f"in [0, 1] ({summary(e, 150)}).") from None
    if num_classes is not None and outputs.shape != (len(images), num_classes):
        raise ConfigError(f"Target {name!r} returns shape {outputs.shape[1:]} per batch; {data_name} needs one "
                          f"logit per class ({num_classes}).")
    bad = int(np.sum(~np.all(np.isfinite(outputs), axis=tuple(range(1, outputs.ndim)))))
    if bad:
        raise ConfigError(f"Target {name!r} returns NaN or infinite logits for {bad} of {len(images)} {data_name} "
                          "images in [0, 1]: an attack on it would measure nothing.")
    if np.all(outputs >= 0) and np.allclose(outputs.sum(-1), 1.0, atol=1e-3):
        raise ConfigError(f"Target {name!r} returns probabilities (rows are >= 0 and sum to 1); tfadv needs logits "
                          "(saturated softmax outputs mask the gradients): pass --strip_softmax (Python: "
                          "strip_softmax=True) to remove a .keras model's final softmax, or save it without one.")
    if labels is None:
        return
    labels = np.asarray(labels)
    at_1 = float(np.mean(np.argmax(outputs, -1) == labels))
    try:
        at_255 = float(np.mean(np.argmax(np.asarray(classifier(images * 255.0)), -1) == labels))
    except Exception:  # noqa: BLE001 - a model with an input guard refuses 0-255: it takes [0, 1]
        return
    if at_255 >= at_1 + RANGE_GAP:
        raise ConfigError(f"Target {name!r} seems to expect pixels in 0-255: accuracy {at_1:.2f} on {len(labels)} "
                          f"[0, 1] images of {data_name}, {at_255:.2f} on the same times 255; pass --pixel_scale=255 "
                          "(Python: pixel_scale=255) so the scaling happens inside the model.")


def generator_attack(target, image_shape, norm: str = "l2", eps: float = 2.4, *, generator: str = "unet",
                     mode: str = "thresholded", learning_rate: float = 1e-3, loss: str = "untargeted",
                     target_class: int | None = None, **generator_kwargs):
    """A compiled PerturbationTrainer: ``fit`` it on (images, labels), ``attack(x)`` gives x_hat.

    ``attack.attacker`` is the x -> x_hat model to save; the budget (``norm``, ``eps``) is enforced by its
    last layer. ``mode``: "thresholded" (per image) or "universal" (one U for all images).
    """
    from tfadv.budgets import check_budget
    from tfadv.schema import PerturbationExperiment
    from tfadv.tasks.perturbation import build_perturbation_trainer

    if mode not in ("thresholded", "universal"):
        raise ConfigError(f"mode must be 'thresholded' or 'universal'. Received: {mode!r}")
    check_budget(norm, eps, tuple(image_shape))
    cfg = PerturbationExperiment(generator=generator, generator_kwargs=dict(generator_kwargs), mode=mode, norm=norm,
                                 eps=eps, loss=loss, target_class=target_class)
    trainer = build_perturbation_trainer(cfg, target, tuple(image_shape))
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return trainer
