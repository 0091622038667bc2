"""Transfer: attacks made on surrogate classifiers, measured on classifiers they never saw.

    table = transfer_table({"unet_cda": TransferAttack(generator_fn, ["fashion_mnist_small_cnn"])},
                           {"fashion_mnist_mlp": mlp, "fashion_mnist_pgd_defense_linf": robust},
                           x, y, norm="linf", eps=0.1, defended={"fashion_mnist_pgd_defense_linf"})

Each attack makes its adversarial images once (from the surrogates it names); every target then classifies
them. Per (attack, target) the table holds:

* ``adv_accuracy``: the target's accuracy on the adversarial images (all images);
* ``fooling_rate``: among the images the target classifies correctly when clean, the fraction it misclassifies
  after the attack (the transfer literature's attack success rate; images it gets wrong anyway do not count for
  the attack);
* with ``target_class``: ``targeted_success``, among the images whose label is not the target class, the
  fraction the target sends to it.

``unseen_mean`` averages an attack's fooling rate over the undefended targets that are not among its
surrogates:
a surrogate never counts towards its own transfer figure. Defended targets are reported apart
(``defended_mean``). Every adversarial image is checked against the budget in float64 before it counts.

:func:`query_table` is the black-box side: Square (scores only, :func:`tfadv.autoattack.square.square`) on each
target, started from scratch and from a prior image (a generator's x_hat), with its success at query budgets.
"""

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from tfadv.autoattack import predict
from tfadv.autoattack.square import query_curve, square
from tfadv.budgets import check_inside_budget
from tfadv.errors import ConfigError, summary
from tfadv.progress import bar

BUDGET_SLACK = 1e-6  # float32 rounding of x + delta


@dataclasses.dataclass
class TransferAttack:
    """An attack as the transfer table runs it: ``make(x, labels) -> x_adv`` (numpy float32 in and out), and the
    surrogate names it used (excluded from its unseen-target mean)."""

    make: Callable
    surrogates: list[str]


def check_target(name: str, classifier, x, num_classes: int) -> None:
    """A target must take these images and return ``num_classes`` scores per image: one line otherwise."""
    try:
        scores = np.asarray(classifier(tf.constant(x[:2])))
    except Exception as e:  # noqa: BLE001 - a model of the wrong input shape raises many types
        raise ConfigError(f"Target {name!r} cannot classify images of shape {tuple(x.shape[1:])}: "
                          f"{summary(e)}") from None
    if scores.ndim != 2 or scores.shape != (min(2, len(x)), num_classes):
        raise ConfigError(f"Target {name!r} returns scores of shape {scores.shape[1:]} per image; the data has "
                          f"{num_classes} classes (one score each).")


def transfer_table(attacks: dict, targets: dict, x, labels, *, norm: str, eps: float, defended=(),
                   target_class: int | None = None, num_classes: int | None = None, batch_size: int = 500) -> dict:
    """Every attack's images measured on every target (see the module doc). ``attacks``: name ->
    :class:`TransferAttack`; ``targets``: name -> classifier (images -> scores; every one must return
    ``num_classes`` scores, default the first target's count); ``defended``: the target names reported apart.
    Returns ``{"clean_accuracy": {target: acc}, "rows": [one dict per attack], ...}`` and the settings."""
    x, labels = np.asarray(x, np.float32), np.asarray(labels, np.int64)
    num_classes = num_classes or int(np.asarray(next(iter(targets.values()))(tf.constant(x[:1]))).shape[-1])
    if labels.max() >= num_classes or (target_class or 0) >= num_classes:
        raise ConfigError(f"The targets return {num_classes} scores per image, but the labels (or target_class) "
                          f"reach class {max(int(labels.max()), target_class or 0)}.")
    for name, classifier in targets.items():
        check_target(name, classifier, x, num_classes)
    clean = {name: predict(classifier, x, batch_size) for name, classifier in targets.items()}
    rows = []
    for attack_name, attack in bar(list(attacks.items()), label="transfer attacks"):
        x_adv = np.asarray(attack.make(x, labels), np.float32)
        check_inside_budget(f"Attack {attack_name!r}", x, x_adv, norm, eps, BUDGET_SLACK)
        row = {"attack": attack_name, "surrogates": list(attack.surrogates), "adv_accuracy": {},
               "fooling_rate": {}}
        if target_class is not None:
            row["targeted_success"] = {}
        for name, classifier in targets.items():
            adv = predict(classifier, x_adv, batch_size)
            right = clean[name] == labels
            row["adv_accuracy"][name] = float(np.mean(adv == labels))
            row["fooling_rate"][name] = float(np.mean(adv[right] != labels[right])) if right.any() else None
            if target_class is not None:
                eligible = labels != target_class
                row["targeted_success"][name] = float(np.mean(adv[eligible] == target_class))
        unseen = [t for t in targets if t not in attack.surrogates and t not in defended]
        row["unseen_targets"] = unseen
        row["unseen_mean"] = _mean(row["fooling_rate"], unseen)
        row["defended_mean"] = _mean(row["fooling_rate"], [t for t in defended if t not in attack.surrogates])
        if target_class is not None:
            row["unseen_targeted_mean"] = _mean(row["targeted_success"], unseen)
        rows.append(row)
    return {"clean_accuracy": {name: float(np.mean(pred == labels)) for name, pred in clean.items()},
            "rows": rows, "norm": norm, "eps": eps, "num_examples": len(x), "target_class": target_class,
            "defended": [t for t in targets if t in defended]}


def _mean(values: dict, names) -> float | None:
    found = [values[n] for n in names if values.get(n) is not None]
    return float(np.mean(found)) if found else None


def query_table(targets: dict, x, labels, *, norm: str, eps: float, priors: dict | None = None,
                n_queries: int = 1000, budgets=(10, 100, 1000), seed: int = 0) -> list[dict]:
    """Square on each target with scores only, from scratch and from each prior (name -> ``make(x, labels) ->
    x_init``, e.g. a generator trained on a surrogate): success at ``budgets`` queries and the median queries to
    success, over the images the target classifies correctly. One row per (target, start)."""
    x, labels = np.asarray(x, np.float32), np.asarray(labels, np.int64)
    budgets = [b for b in budgets if b <= n_queries + 1] or [n_queries + 1]  # + 1: the start's query
    starts = {"square": None, **{f"square from {name}": make for name, make in (priors or {}).items()}}
    inits = {name: (None if make is None else np.asarray(make(x, labels), np.float32))
             for name, make in starts.items()}
    rows = []
    runs = [(t, s) for t in targets for s in inits]
    for target_name, start_name in bar(runs, label="Square, scores only"):
        x_adv, queries = square(targets[target_name], x, labels, norm=norm, eps=eps, n_queries=n_queries,
                                seed=seed, x_init=inits[start_name], return_queries=True)
        check_inside_budget("Attack " + repr(f"{start_name} on {target_name}"), x, x_adv, norm, eps,
                            BUDGET_SLACK)
        curve = query_curve(queries, budgets)
        rows.append({"target": target_name, "start": start_name, "n_queries": n_queries,
                     "attacked": curve["attacked"], **{f"success_at_{b}": v for b, v in curve["success_at"].items()},
                     "success": curve["success"], "median_queries": curve["median_queries"]})
    return rows


def black_box(scores: Callable, num_classes: int) -> Callable:
    """A model you can only query, as a classifier the score-based attacks accept.

    ``scores(images)`` takes a float32 numpy batch [N, H, W, C] in [0, 1] and returns [N, num_classes] scores
    (logits or probabilities: Square reads only their order). It runs as Python (``tf.numpy_function``): no
    gradient reaches it and nothing about it is traced, so it can call a server, another framework or a file.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an int >= 2. Received: num_classes={num_classes!r}")

    def query(images):
        def run(batch):
            out = np.asarray(scores(batch), np.float32)
            if out.shape != (len(batch), num_classes):
                raise ValueError(f"the black-box model returned scores of shape {out.shape} for {len(batch)} "
                                 f"images; expected ({len(batch)}, {num_classes}).")
            return out

        out = tf.numpy_function(run, [tf.convert_to_tensor(images, tf.float32)], tf.float32, stateful=True)
        return tf.ensure_shape(out, [None, num_classes])

    return query
