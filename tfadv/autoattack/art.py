"""A reduced AutoAttack through the Adversarial Robustness Toolbox: the figures tfadv recorded before its native
AutoAttack (``tfadv.autoattack``), kept as the independent cross-check of the native stages and the speed
benchmark's comparison. It is NOT AutoAttack's standard version, and its figures say so (registry column
``autoattack_art_reduced``).

    pip install 'tfadv[eval]'                       # ART 1.20.1 and what its attacks import
    result = autoattack.art.evaluate(serve, images, labels, norm="linf", eps=0.1)

Stages, in sequence on the images still classified correctly: APGD-CE (ART), APGD-T (ART's APGD with its
untargeted DLR loss evaluated towards the target, not Croce & Hein's targeted DLR; 3 targets by default) and Square
(ART's, 500 queries by default). FAB-T is left out: ART has no FAB. Adversarial images are moved into the budget in
float64 (``tfadv.autoattack.budget.into_budget``) before the last prediction.
"""

import time

import numpy as np

from tfadv.autoattack.budget import into_budget
from tfadv.errors import ConfigError

ART_VERSION = "1.20.1"  # the version the recorded figures used; the eval extra pins it
NORMS = {"linf": np.inf, "l2": 2}
STAGES = ("apgd-ce", "apgd-t", "square")
DEFAULTS = dict(stages=STAGES, apgd_iter=100, apgd_restarts=1, targets=3, square_queries=500,
                square_p_init=0.8, batch_size=500, seed=0)


def _art():
    try:
        import art
    except ImportError:
        raise ConfigError("AutoAttack needs the Adversarial Robustness Toolbox: pip install 'tfadv[eval]' "
                          f"(adversarial-robustness-toolbox=={ART_VERSION}, multiprocess).") from None
    return art


def art_classifier(serve, input_shape=(28, 28, 1), nb_classes=10, loss_object=None):
    """ART's TensorFlowV2Classifier over ``serve`` ([0, 1] float32 NHWC images -> logits).

    ``loss_object`` defaults to categorical cross-entropy on the logits.
    """
    _art()
    import keras
    import tensorflow as tf
    from art.estimators.classification import TensorFlowV2Classifier

    def model(x, training=False):  # ART calls model(x, training=...); a SavedModel's serve takes images only
        del training
        x = tf.convert_to_tensor(x, tf.float32)
        # ART's L2 Square can propose images with NaN pixels; zoo models refuse them, so they are queried as 0.
        # Such pixels never reach the result: into_budget puts the clean pixel back.
        return serve(tf.where(tf.math.is_finite(x), x, tf.zeros_like(x)))

    return TensorFlowV2Classifier(model=model, nb_classes=nb_classes, input_shape=tuple(input_shape),
                                  loss_object=loss_object or keras.losses.CategoricalCrossentropy(from_logits=True),
                                  clip_values=(0.0, 1.0))


def _predict(classifier, x, batch_size):
    return np.argmax(classifier.predict(x.astype(np.float32), batch_size=batch_size), axis=1)


class DifferenceLogitsRatio:
    """ART's APGD DLR loss, -(z_y - max_{i != y} z_i) / (z_(1) - z_(3)), computed for the whole batch at once.

    ART 1.20.1 computes the same formula with a Python loop over the batch, which made APGD-T several times
    slower here than APGD-CE; ``tests/test_autoattack.py`` checks the two agree. ``reduction`` follows ART's
    convention ("none", "mean" or "sum"; ART sets it around ``compute_loss``).
    """

    def __init__(self):
        self.reduction = "mean"

    def __call__(self, y_true, y_pred, *args, **kwargs):
        import tensorflow as tf

        y_pred = tf.convert_to_tensor(y_pred)
        y_true = tf.cast(y_true, y_pred.dtype)
        top = tf.sort(y_pred, axis=1, direction="DESCENDING")
        z_y = tf.reduce_sum(y_true * y_pred, axis=1)
        label_on_top = tf.argmax(y_pred, axis=1) == tf.argmax(y_true, axis=1)
        z_other = tf.where(label_on_top, top[:, 1], top[:, 0])
        dlr = -(z_y - z_other) / (top[:, 0] - top[:, 2])
        reduction = str(getattr(self.reduction, "value", self.reduction)).lower()
        if reduction == "none":
            return dlr
        return tf.reduce_sum(dlr) if reduction == "sum" else tf.reduce_mean(dlr)


def _apgd(classifier, norm, eps, loss_type, targeted, settings):
    from art.attacks.evasion import AutoProjectedGradientDescent

    if loss_type == "difference_logits_ratio":  # the same loss, batched: ART's APGD with loss_type=None uses it
        classifier, loss_type = art_classifier(classifier.model, classifier.input_shape,
                                               loss_object=DifferenceLogitsRatio()), None
    return AutoProjectedGradientDescent(
        classifier, norm=NORMS[norm], eps=eps, eps_step=2 * eps, max_iter=settings["apgd_iter"],
        targeted=targeted, nb_random_init=settings["apgd_restarts"], batch_size=settings["batch_size"],
        loss_type=loss_type, verbose=False)


def _untargeted(stage, classifier, norm, eps, settings):
    """The ART attack of an untargeted stage."""
    if stage == "apgd-ce":
        return _apgd(classifier, norm, eps, "cross_entropy", False, settings)
    from art.attacks.evasion import SquareAttack

    return SquareAttack(classifier, norm=NORMS[norm], eps=eps, max_iter=settings["square_queries"],
                        p_init=settings["square_p_init"], nb_restarts=1, batch_size=settings["batch_size"],
                        verbose=False)


def evaluate(serve, images, labels, *, norm: str = "linf", eps: float = 0.1, log=None, **settings) -> dict:
    """AutoAttack's robust accuracy of ``serve`` on ``images`` (float32 [N, H, W, C] in [0, 1]) and int ``labels``.

    Settings (see ``DEFAULTS``): ``stages`` in order, ``apgd_iter`` iterations and ``apgd_restarts`` random starts
    per APGD run (step size 2 * eps, as in AutoAttack), ``targets`` target classes for APGD-T, ``square_queries``
    for Square, ``batch_size``, ``seed``. ``log(line)`` is called after each stage. Returns ``robust_accuracy``,
    ``clean_accuracy``, ``stages`` (per stage: robust accuracy after it, seconds), ``settings``, ``seconds``,
    ``adversarial`` (the images, inside the budget) and ``robust`` (bool per image).
    """
    if norm not in NORMS:
        raise ConfigError(f"Unknown norm {norm!r} for AutoAttack; use one of {', '.join(NORMS)}.")
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ConfigError(f"AutoAttack eps must be a positive number, got {eps!r}.")
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"Unknown AutoAttack setting(s) {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(DEFAULTS)}.")
    settings = {**DEFAULTS, **settings}
    settings["stages"] = tuple(settings["stages"])
    for stage in settings["stages"]:
        if stage not in STAGES:
            raise ConfigError(f"Unknown AutoAttack stage {stage!r}. Known stages: {', '.join(STAGES)}.")
    if not 0 <= settings["targets"] <= 9:
        raise ConfigError(f"AutoAttack targets must be 0..9 (other classes), got {settings['targets']}.")
    art = _art()
    from art.utils import to_categorical

    np.random.seed(settings["seed"])  # ART draws its random starts and squares from numpy's global generator
    x = np.asarray(images, np.float32)
    y = np.asarray(labels).astype(np.int64)
    log = log or (lambda line: None)
    started = time.time()
    classifier = art_classifier(serve, x.shape[1:])
    one_hot = lambda labels_: to_categorical(labels_, 10)  # noqa: E731
    logits = classifier.predict(x, batch_size=settings["batch_size"])
    robust = np.argmax(logits, axis=1) == y
    x_adv = x.copy()
    stages = [{"stage": "clean", "robust_accuracy": float(robust.mean()), "seconds": round(time.time() - started, 1)}]
    log(f"clean: {robust.mean():.4f} ({robust.sum()}/{len(y)})")
    for stage in settings["stages"]:
        t0 = time.time()
        if stage == "apgd-t":
            order = np.argsort(-logits, axis=1)  # runner-up classes first, as AutoAttack picks its targets
            for k in range(settings["targets"]):
                idx = np.flatnonzero(robust)
                if not len(idx):
                    break
                target = np.where(order[idx, 0] == y[idx], order[idx, k + 1], order[idx, k])  # never the label
                candidate = _apgd(classifier, norm, eps, "difference_logits_ratio", True, settings).generate(
                    x[idx], one_hot(target))
                robust, x_adv = _keep_successes(classifier, x, y, x_adv, idx, candidate, robust, norm, eps, settings)
                log(f"  apgd-t target {k + 1}/{settings['targets']}: {robust.mean():.4f} in {time.time() - t0:.0f}s")
        else:
            idx = np.flatnonzero(robust)
            if len(idx):
                candidate = _untargeted(stage, classifier, norm, eps, settings).generate(x[idx], one_hot(y[idx]))
                robust, x_adv = _keep_successes(classifier, x, y, x_adv, idx, candidate, robust, norm, eps, settings)
        stages.append({"stage": stage, "robust_accuracy": float(robust.mean()), "seconds": round(time.time() - t0, 1)})
        log(f"after {stage}: {robust.mean():.4f} ({robust.sum()}/{len(y)}) in {time.time() - t0:.0f}s")
    final = _predict(classifier, x_adv, settings["batch_size"]) == y  # the returned images, as they are
    if np.any(final & ~robust):
        raise AssertionError("AutoAttack bookkeeping: an image counted as broken is classified correctly.")
    return {"robust_accuracy": float(final.mean()), "clean_accuracy": stages[0]["robust_accuracy"],
            "stages": stages, "settings": {**settings, "stages": list(settings["stages"]), "norm": norm, "eps": eps,
                                           "eps_step": 2 * eps, "version": "art-reduced",
                                           "library": f"adversarial-robustness-toolbox=={art.__version__}"},
            "num_examples": len(y), "seconds": round(time.time() - started, 1), "adversarial": x_adv,
            "robust": final}


def _keep_successes(classifier, x, y, x_adv, idx, candidate, robust, norm, eps, settings):
    """Takes a stage's images (moved into the budget) for the images it misclassifies; the rest stay robust."""
    candidate = into_budget(x[idx], candidate, norm, eps)
    broken = _predict(classifier, candidate, settings["batch_size"]) != y[idx]
    x_adv, robust = x_adv.copy(), robust.copy()
    x_adv[idx[broken]] = candidate[broken]
    robust[idx[broken]] = False
    return robust, x_adv
