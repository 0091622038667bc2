"""AutoAttack (Croce & Hein 2020), native TensorFlow: the yardstick tfadv judges every attack and defense by.

    result = autoattack.evaluate(classifier, images, labels, norm="linf", eps=0.1)   # version="standard"
    result["robust_accuracy"], result["stages"]      # final figure; robust accuracy and seconds after each stage

``version="standard"`` runs the reference implementation's (fra31/auto-attack) standard stages and settings:
APGD-CE (100 iterations, 1 restart), APGD-T (targeted DLR loss, 9 target classes, 100 iterations), FAB-T
(9 target classes, 100 iterations) and Square (5000 queries, p_init 0.8), each only on the images every earlier
stage left correctly classified, so an image is robust only if every stage fails. Any other stage list or setting
is ``version="custom"``, and the result records it as such with its stages and settings.

Each stage is one compiled TensorFlow loop over a batch (``apgd``, ``fab``, ``square``); the number of classes is
read from the classifier's logits. ``classifier`` is any callable float32 NHWC images in [0, 1] -> logits: a Keras
model, a SavedModel's ``serve`` (``tfadv.byo.load_classifier`` resolves a zoo name, ``.keras`` file or SavedModel
folder). A stage's images count only after :func:`tfadv.autoattack.budget.into_budget` has put them inside the norm
ball and [0, 1] in float64, and the final figure is the classifier's accuracy on the returned images as they are.

``tfadv.autoattack.art`` keeps the reduced AutoAttack through ART that earlier figures used (the cross-check and the
speed benchmark's comparison); its figures live in the registry under ``autoattack_art_reduced``.
"""

import time

import numpy as np

from tfadv.autoattack.budget import into_budget
from tfadv.errors import ConfigError, summary

__all__ = ["evaluate", "evaluate_classifier", "evaluate_zoo_entry", "record", "resolve", "STAGES", "STANDARD",
           "into_budget"]

IMPLEMENTATION = "tfadv.autoattack (native TensorFlow)"
STAGES = ("apgd-ce", "apgd-t", "fab-t", "square")
# The reference's version='standard' (autoattack.py set_version): every field is part of the version.
STANDARD = dict(stages=STAGES, apgd_iter=100, apgd_restarts=1, apgd_rho=0.75, targets=9, fab_iter=100,
                fab_alpha_max=0.1, fab_eta=1.05, fab_beta=0.9, square_queries=5000, square_p_init=0.8)
NORMS = ("linf", "l2")
# The registry column of each version; "art-reduced" is tfadv.autoattack.art, the figures recorded before.
COLUMNS = {"standard": "autoattack", "custom": "autoattack_custom", "art-reduced": "autoattack_art_reduced"}


def resolve(version: str = "standard", **settings) -> dict:
    """The settings of ``version``: "standard" (no overrides allowed) or "custom" (standard's, overridden)."""
    if version not in ("standard", "custom"):
        raise ConfigError(f"Unknown AutoAttack version {version!r}; use 'standard' or 'custom' (ART's reduced "
                          f"version is tfadv.autoattack.art.evaluate).")
    unknown = sorted(set(settings) - set(STANDARD))
    if unknown:
        raise ConfigError(f"Unknown AutoAttack setting(s) {', '.join(unknown)}; known: {', '.join(STANDARD)}.")
    if version == "standard":
        changed = sorted(k for k, v in settings.items() if _normal(v) != _normal(STANDARD[k]))
        if changed:
            raise ConfigError(f"version='standard' fixes its settings; {', '.join(changed)} differ: pass "
                              f"version='custom' to run them.")
    resolved = {**STANDARD, **settings, "stages": tuple(settings.get("stages", STANDARD["stages"]))}
    for stage in resolved["stages"]:
        if stage not in STAGES:
            raise ConfigError(f"Unknown AutoAttack stage {stage!r}. Known stages: {', '.join(STAGES)}.")
    if not resolved["stages"]:
        raise ConfigError("AutoAttack needs at least one stage.")
    return resolved


def _normal(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _run_stage(stage, classifier, x, labels, norm, eps, s, seed):
    # The stages import TensorFlow: on use, so that this package's settings (STAGES, STANDARD) load without it.
    from tfadv.autoattack import apgd, fab, square

    if stage == "apgd-ce":
        return apgd.apgd(classifier, x, labels, norm=norm, eps=eps, n_iter=s["apgd_iter"],
                         n_restarts=s["apgd_restarts"], rho=s["apgd_rho"], seed=seed)
    if stage == "apgd-t":
        return apgd.apgd_targeted(classifier, x, labels, norm=norm, eps=eps, n_target_classes=s["targets"],
                                  n_iter=s["apgd_iter"], rho=s["apgd_rho"], seed=seed)
    if stage == "fab-t":
        return fab.fab_targeted(classifier, x, labels, norm=norm, eps=eps, n_target_classes=s["targets"],
                                n_iter=s["fab_iter"], alpha_max=s["fab_alpha_max"], eta=s["fab_eta"],
                                beta=s["fab_beta"], seed=seed)
    return square.square(classifier, x, labels, norm=norm, eps=eps, n_queries=s["square_queries"],
                         p_init=s["square_p_init"], seed=seed)


def predict(classifier, images, batch_size: int) -> np.ndarray:
    """Predicted classes of float32 ``images``, in batches."""
    import tensorflow as tf

    return np.concatenate([np.argmax(np.asarray(classifier(tf.constant(images[i:i + batch_size]))), axis=1)
                           for i in range(0, len(images), batch_size)])


def evaluate(classifier, images, labels, *, norm: str = "linf", eps: float = 0.1, version: str = "standard",
             batch_size: int = 1000, seed: int = 0, log=None, **settings) -> dict:
    """AutoAttack's robust accuracy of ``classifier`` on ``images`` (float32 [N, H, W, C] in [0, 1]), int ``labels``.

    ``version="standard"`` takes no settings; ``version="custom"`` overrides any of ``STANDARD``. ``batch_size``
    images go through a stage at once (it changes no figure beyond the random stream's split); ``log(line)`` is
    called after each stage. Returns ``robust_accuracy``, ``clean_accuracy``, ``stages`` (per stage: robust accuracy
    after it, seconds), ``settings`` (with version, norm, eps and implementation), ``num_examples``, ``seconds``,
    ``adversarial`` (the images, inside the budget) and ``robust`` (bool per image).
    """
    if norm not in NORMS:
        raise ConfigError(f"Unknown norm {norm!r} for AutoAttack; use one of {', '.join(NORMS)}.")
    if not (isinstance(eps, (int, float)) and 0 < eps < float("inf")):
        raise ConfigError(f"AutoAttack eps must be a positive finite number, got {eps!r}.")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ConfigError(f"AutoAttack batch_size must be an int >= 1, got {batch_size!r}.")
    s = resolve(version, **settings)
    x = np.asarray(images, np.float32)
    y = np.asarray(labels).astype(np.int64)
    if x.ndim != 4 or len(x) != len(y) or not len(x):
        raise ConfigError(f"AutoAttack needs images [N, H, W, C] and one label each; got {x.shape} and {y.shape}.")
    log = log or (lambda line: None)
    started = time.time()
    robust = predict(classifier, x, batch_size) == y
    x_adv = x.copy()
    stages = [{"stage": "clean", "robust_accuracy": float(robust.mean()), "seconds": round(time.time() - started, 1)}]
    log(f"clean: {robust.mean():.4f} ({robust.sum()}/{len(y)})")
    for stage in s["stages"]:
        t0 = time.time()
        todo = np.flatnonzero(robust)
        for start in range(0, len(todo), batch_size):
            idx = todo[start:start + batch_size]
            candidate = into_budget(x[idx], np.asarray(_run_stage(stage, classifier, x[idx], y[idx], norm,
                                                                   float(eps), s, seed)), norm, eps)
            broken = predict(classifier, candidate, batch_size) != y[idx]
            x_adv[idx[broken]] = candidate[broken]
            robust[idx[broken]] = False
        stages.append({"stage": stage, "robust_accuracy": float(robust.mean()), "seconds": round(time.time() - t0, 1)})
        log(f"after {stage}: {robust.mean():.4f} ({robust.sum()}/{len(y)}) in {time.time() - t0:.0f}s")
    final = predict(classifier, x_adv, batch_size) == y  # the returned images, as they are
    if np.any(final & ~robust):
        raise AssertionError("AutoAttack bookkeeping: an image counted as broken is classified correctly.")
    return {"robust_accuracy": float(final.mean()), "clean_accuracy": stages[0]["robust_accuracy"],
            "stages": stages, "settings": {**s, "stages": list(s["stages"]), "version": version, "norm": norm,
                                           "eps": float(eps), "seed": seed, "batch_size": batch_size,
                                           "implementation": IMPLEMENTATION},
            "num_examples": len(y), "seconds": round(time.time() - started, 1), "adversarial": x_adv,
            "robust": final}


def _test_images(dataset: str, num_examples: int, idx_dir=None):
    """The first ``num_examples`` test images and labels of ``dataset`` as numpy arrays, and the data source."""
    from tfadv import data

    images, labels, info = data.load_arrays(dataset, f"test[:{num_examples}]", idx_dir=idx_dir)
    return images, labels, getattr(info, "source", None)


def zoo_classifier_and_test_images(name: str, num_examples: int, zoo_dir=None, idx_dir=None, *,
                                   purpose: str = "this"):
    """Zoo classifier ``name`` (plain ``tf.saved_model.load`` after its checksum; call its ``serve`` while the
    returned object lives) and the first ``num_examples`` test images of its dataset: (saved_model, images,
    labels, data source). A one-line ConfigError names ``purpose`` when the entry serves images, not logits."""
    import tensorflow as tf

    from tfadv import zoo
    from tfadv.evaluation import CLASSIFIER_KINDS

    entry = zoo.entry(name, zoo_dir)
    if entry["kind"] not in CLASSIFIER_KINDS:
        raise ConfigError(f"Zoo entry {name!r} is a {entry['kind']}, not a classifier; {purpose} needs one.")
    saved_model = tf.saved_model.load(zoo.verify(name, zoo_dir))
    return (saved_model, *_test_images(entry["dataset"], num_examples, idx_dir))


def _figures(result: dict, split: str, source) -> dict:
    return {**{k: v for k, v in result.items() if k not in ("adversarial", "robust")}, "split": split,
            "data_source": source}


def evaluate_zoo_entry(name: str, *, norm: str, eps: float, num_examples: int = 1000, zoo_dir=None, idx_dir=None,
                       version: str = "standard", **kwargs) -> dict:
    """:func:`evaluate` on zoo classifier ``name`` (plain ``tf.saved_model.load`` after its checksum) over the
    first ``num_examples`` test images; returns the JSON-ready figures (no image arrays). ``version="art-reduced"``
    runs :func:`tfadv.autoattack.art.evaluate` instead (the reduced ART version earlier figures used)."""
    saved_model, images, labels, source = zoo_classifier_and_test_images(name, num_examples, zoo_dir, idx_dir,
                                                                         purpose="AutoAttack")
    if version == "art-reduced":
        from tfadv.autoattack import art

        result = art.evaluate(saved_model.serve, images, labels, norm=norm, eps=eps, **kwargs)
    else:
        result = evaluate(saved_model.serve, images, labels, norm=norm, eps=eps, version=version, **kwargs)
    return {"zoo_name": name, **_figures(result, f"test[:{num_examples}]", source)}


def evaluate_classifier(target: str, *, dataset: str, norm: str, eps: float, num_examples: int = 1000,
                        pixel_scale: float = 1.0, zoo_dir=None, idx_dir=None, **kwargs) -> dict:
    """:func:`evaluate` on any classifier the bring-your-own contract accepts (a ``.keras`` file, a SavedModel
    folder or a zoo name; ``pixel_scale=255`` for 0-255 models) over the first ``num_examples`` test images of
    ``dataset``. The contract is checked first (one-line ConfigError: not [0, 1] images in, not logits out)."""
    from tfadv.targets import load_target, with_pixel_scale

    classifier = load_target(with_pixel_scale(target, pixel_scale), zoo_dir)
    images, labels, source = _test_images(dataset, num_examples, idx_dir)
    check_logits(classifier, images[:8], target)
    result = evaluate(classifier, images, labels, norm=norm, eps=eps, **kwargs)
    return {"classifier": target, "dataset": dataset, **_figures(result, f"test[:{num_examples}]", source)}


def check_logits(classifier, images, name: str) -> None:
    """One-line ConfigError unless ``classifier`` maps these [0, 1] images to logits [N, K] (K >= 2, not
    probabilities: AutoAttack's losses need logits)."""
    import tensorflow as tf

    try:
        outputs = np.asarray(classifier(tf.constant(images)), np.float64)
    except Exception as e:  # noqa: BLE001 - a model of the wrong input size fails in many ways
        raise ConfigError(f"Classifier {name!r} does not take images of shape {tuple(images.shape[1:])} in [0, 1] "
                          f"({summary(e, 150)}).") from None
    if outputs.ndim != 2 or outputs.shape[0] != len(images) or outputs.shape[1] < 2:
        raise ConfigError(f"Classifier {name!r} must return logits [N, K]; it returned shape {outputs.shape}.")
    if np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-4):
        raise ConfigError(f"Classifier {name!r} returns probabilities (rows >= 0 summing to 1); AutoAttack needs "
                          f"logits: drop the final softmax.")


def record(name: str, result: dict, zoo_dir=None) -> str:
    """Adds ``result`` to entry ``name``'s ``robustness_<norm>_<eps>`` table as column ``autoattack`` (standard
    version) or ``autoattack_custom`` (through :func:`tfadv.zoo.add_metrics`: the artifact and its checksum stay as
    they are); returns the table's key."""
    from tfadv import zoo

    settings = result["settings"]
    key = f"robustness_{settings['norm']}_{settings['eps']:g}"
    column = {k: result[k] for k in ("robust_accuracy", "clean_accuracy", "stages", "settings", "num_examples",
                                     "split", "data_source", "seconds", "command") if k in result}
    table = zoo.entry(name, zoo_dir)["metrics"].get(key, {})
    zoo.add_metrics(name, {key: {**table, COLUMNS[settings["version"]]: column}}, zoo_dir)
    return key
