"""How close a generator (alone and refined by a few PGD steps) gets to AutoAttack, and how fast
(``tools/benchmark_attack_strength.py``).

    result, printed = zoo_benchmark("fashion_mnist_pgd_defense_linf", "fashion_mnist_unet_linf_vs_pgd")
    rows = benchmark(classifier, generator, images, labels, norm="linf", eps=0.1)   # any callables

Rows, all on the same images: the generator's x_hat; ``generator+PGD-k``, PGD started from x_hat for each k of
``refine_steps`` (per image the refined image if it is misclassified, else x_hat, so a row never loses a
generator's success); ``PGD-kx1``, the same steps from a random start (``plain_pgd``: what x_hat adds);
``PGD-SxR``, PGD from random starts; ``AutoAttack`` (standard) on the first ``autoattack_examples`` images. Every
returned image passes the float64 budget check before the classifier scores it; the first batch of each attack
runs once untimed (tracing is not attack time).
"""

import json
import time

import numpy as np

from tfadv import markdown
from tfadv.budgets import check_inside_budget
from tfadv.errors import ConfigError
from tfadv.timing import timed_calls


def _batches(n, batch_size):
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _timed(attack, images, labels, batch_size):
    """attack(x, y) -> x_adv over batches, timed: (x_adv, seconds for all images)."""
    import tensorflow as tf

    batches = [(tf.constant(images[part]), tf.constant(labels[part])) for part in _batches(len(images), batch_size)]
    seconds, outputs = timed_calls(lambda x, y: np.asarray(attack(x, y)), batches)
    return np.concatenate(outputs), seconds * len(batches)


def benchmark(classifier, generator, images, labels, *, norm, eps, refine_steps=(1, 2, 5, 10), pgd_steps=100,
              pgd_restarts=2, autoattack_examples=0, autoattack_settings=None, batch_size=500, plain_pgd=False,
              refine_loss="untargeted", refine_step=None, log=print):
    """The benchmark's rows on ``images`` (float32 [N, H, W, C] in [0, 1]) and int ``labels``.

    ``classifier``: images -> logits; ``generator``: images -> x_hat. ``plain_pgd`` adds PGD with each of
    ``refine_steps`` from a random start (one restart), to separate the generator's share. ``refine_loss``
    (tfadv.losses) and ``refine_step`` (step size as a multiple of eps; default PGD's 2.5 / k) set those k-step
    runs. Returns a list of dicts (``attack``, ``adv_accuracy``, ``subset_accuracy`` on the first
    ``autoattack_examples`` images, ``seconds``, ``images_per_s``, ``num_examples``, and ``adversarial``/``correct``
    arrays that the caller drops from JSON).
    """
    from tfadv import attacks, autoattack

    images = np.asarray(images, np.float32)
    labels = np.asarray(labels).astype(np.int32)
    n = len(labels)
    if not 0 <= autoattack_examples <= n:
        raise ConfigError(f"autoattack_examples must be in [0, num_examples={n}]. Received: {autoattack_examples}")
    if any((not isinstance(k, int)) or k < 1 for k in refine_steps):
        raise ConfigError(f"refine_steps must be ints >= 1. Received: {list(refine_steps)}")
    subset = autoattack_examples or n
    rows = []

    def add(name, adversarial, seconds, count=n):
        adversarial = np.asarray(adversarial, np.float32)
        check_inside_budget(name, images[:count], adversarial, norm, eps, slack=1e-5 * max(1.0, eps))
        correct = autoattack.predict(classifier, adversarial, batch_size) == labels[:count]
        row = {"attack": name, "adv_accuracy": float(correct.mean()), "num_examples": count,
               "subset_accuracy": float(correct[:subset].mean()), "seconds": seconds,
               "images_per_s": count / seconds, "adversarial": adversarial, "correct": correct}
        rows.append(row)
        log(f"{name}: adversarial accuracy {row['adv_accuracy']:.4f} on {count} images, "
            f"{row['images_per_s']:.1f} images/s")
        return row

    x_hat, gen_seconds = _timed(lambda x, y: generator(x), images, labels, batch_size)
    add("generator", x_hat, gen_seconds)
    for k in refine_steps:
        def refine(x, y, k=k):
            start = generator(x)
            refined = attacks.pgd(classifier, x, y, eps=eps, norm=norm, steps=k, random_start=False, start=start,
                                  loss=refine_loss, step_size=None if refine_step is None else refine_step * eps)
            fooled = np.argmax(np.asarray(classifier(refined)), axis=1) != np.asarray(y)
            keep = fooled.reshape((-1,) + (1,) * (len(x.shape) - 1))
            return np.where(keep, np.asarray(refined), np.asarray(start))  # a success of either is kept
        adversarial, seconds = _timed(refine, images, labels, batch_size)
        add(f"generator+PGD-{k}", adversarial, seconds)
    for k in refine_steps if plain_pgd else ():  # what the generator's start adds: the same steps from random
        adversarial, seconds = _timed(lambda x, y, k=k: attacks.pgd(
            classifier, x, y, eps=eps, norm=norm, steps=k, loss=refine_loss,
            step_size=None if refine_step is None else refine_step * eps), images, labels, batch_size)
        add(f"PGD-{k}x1", adversarial, seconds)
    adversarial, seconds = _timed(lambda x, y: attacks.pgd(classifier, x, y, eps=eps, norm=norm, steps=pgd_steps,
                                                          restarts=pgd_restarts), images, labels, batch_size)
    add(f"PGD-{pgd_steps}x{pgd_restarts}", adversarial, seconds)
    if autoattack_examples:
        start = time.perf_counter()
        result = autoattack.evaluate(classifier, images[:subset], labels[:subset], norm=norm, eps=eps,
                                     **(autoattack_settings or {}))
        row = add("AutoAttack", result["adversarial"], time.perf_counter() - start, count=subset)
        if abs(row["adv_accuracy"] - result["robust_accuracy"]) > 1e-9:
            raise AssertionError("AutoAttack: its figure differs from the accuracy on the images it returned.")
        row["settings"] = result["settings"]
    return rows


def compare(rows, recorded=None):
    """Adds each row's gap to AutoAttack (percentage points of accuracy) and speed relative to it, in place.

    ``vs_aa_subset_points``: the row's accuracy minus AutoAttack's on the subset AutoAttack ran on (same images).
    ``vs_aa_recorded_points``: the row's accuracy minus the recorded figure, where that used the same images.
    ``x_aa_speed``: images/s over AutoAttack's (measured here, else the recorded run's).
    """
    measured = next((r for r in rows if r["attack"] == "AutoAttack"), None)
    speed = measured["images_per_s"] if measured else (
        recorded["num_examples"] / recorded["seconds"] if recorded else None)
    for row in rows:
        if measured:
            row["vs_aa_subset_points"] = 100 * (row["subset_accuracy"] - measured["adv_accuracy"])
        if recorded and recorded["num_examples"] == row["num_examples"]:
            row["vs_aa_recorded_points"] = 100 * (row["adv_accuracy"] - recorded["robust_accuracy"])
        if speed:
            row["x_aa_speed"] = row["images_per_s"] / speed
    return rows


def table(rows, recorded=None) -> str:
    """The rows (after :func:`compare`) as a Markdown table, and the recorded AutoAttack figure as its last row."""
    def cell(row, key, spec):
        return format(row[key], spec) if key in row else "-"

    cells = [(r["attack"], f"{r['adv_accuracy']:.4f}", r["num_examples"], f"{r['subset_accuracy']:.4f}",
              cell(r, "vs_aa_subset_points", "+.1f"), cell(r, "vs_aa_recorded_points", "+.1f"), f"{r['seconds']:.1f}",
              f"{r['images_per_s']:.2f}", cell(r, "x_aa_speed", ".0f")) for r in rows]
    if recorded:
        cells.append(("AutoAttack (recorded, registry)", f"{recorded['robust_accuracy']:.4f}",
                      recorded["num_examples"], "-", "-", "-", f"{recorded['seconds']:.1f}",
                      f"{recorded['num_examples'] / recorded['seconds']:.2f}", "-"))
    return markdown.table(("attack", "adv acc", "images", "acc on AA subset", "vs AA subset (pts)",
                           "vs AA recorded (pts)", "s", "images/s", "x AA speed"), cells)


def zoo_benchmark(target: str, generator: str, *, zoo_dir=None, idx_dir=None, num_examples: int = 1000,
                  autoattack_examples: int = 100, pgd_steps: int = 100, pgd_restarts: int = 2,
                  **settings) -> tuple[dict, str]:
    """:func:`benchmark` of zoo generator ``generator`` against zoo classifier ``target`` (the generator's own
    target), at the generator's budget, on the first ``num_examples`` test images, beside the AutoAttack figure
    recorded for ``target`` at that budget. ``settings``: :func:`benchmark`'s refinement settings and batch size.

    Returns the JSON result (rows without their image arrays, the recorded AutoAttack and PGD figures) and what
    the tool prints before it: a heading naming the images, and the table.
    """
    from tfadv import autoattack, zoo

    target_entry, generator_entry = zoo.entry(target, zoo_dir), zoo.entry(generator, zoo_dir)
    if generator_entry["kind"] != "perturbation" or not generator_entry.get("budget"):
        raise ConfigError(f"--generator {generator!r} is not a budgeted perturbation entry.")
    if generator_entry.get("target") != target:
        raise ConfigError(f"--generator {generator!r} was trained against {generator_entry.get('target')!r}, "
                          f"not --target {target!r}.")
    norm, eps = generator_entry["budget"]["norm"], float(generator_entry["budget"]["eps"])
    robustness = target_entry["metrics"].get(f"robustness_{norm}_{eps:g}", {})
    recorded = robustness.get("autoattack")  # the standard version's figure, where one was recorded
    classifier, images, labels, source = autoattack.zoo_classifier_and_test_images(
        target, num_examples, zoo_dir, idx_dir, purpose="--target")
    attack = zoo.load(generator, zoo_dir)
    rows = benchmark(classifier.serve, attack.serve, images, labels, norm=norm, eps=eps, pgd_steps=pgd_steps,
                     pgd_restarts=pgd_restarts, autoattack_examples=min(autoattack_examples, len(labels)),
                     **settings)
    compare(rows, recorded)
    printed = f"\n{generator} vs {target}, {norm} {eps:g}, first {len(labels)} test images ({source})\n" + table(
        rows, recorded)
    result = {"target": target, "generator": generator, "norm": norm, "eps": eps,
              "split": f"test[:{len(labels)}]", "rows": [{k: v for k, v in r.items()
                                                          if k not in ("adversarial", "correct")} for r in rows],
              "autoattack_recorded": recorded, "pgd_recorded": robustness.get(f"pgd{pgd_steps}x{pgd_restarts}")}
    return json.loads(json.dumps(result, default=float)), printed
