"""Benchmark: how close a generator (alone and refined by a few PGD steps) gets to AutoAttack, and how fast.

    python tools/benchmark_attack_strength.py --target=fashion_mnist_pgd_defense_linf \
        --generator=fashion_mnist_unet_linf_vs_pgd --num_examples=1000 --refine_steps=1,2,5,10 \
        --pgd_steps=100 --pgd_restarts=2 --autoattack_examples=100 --output=/tmp/strength_linf.json

One run, one table, on the first --num_examples test images (the images the registry's AutoAttack figure used):

* ``generator``: the zoo generator's x_hat (its SavedModel's ``serve``), one forward pass per image;
* ``generator+PGD-k``: tfadv's PGD started from x_hat (``pgd(..., start=x_hat, random_start=False)``) for each
  k of --refine_steps: an input-dependent refinement. Per image the attack returns the refined image if it is
  misclassified, else x_hat (the attacker sees the prediction; AutoAttack keeps successes across its stages
  the same way), so a row is never weaker than the generator on the same images;
* ``PGD-kx1`` (--plain_pgd): the same k steps from a random start instead of x_hat: what the generator adds;
* ``PGD-SxR``: tfadv's PGD from random starts (the registry's PGD column: S steps, R restarts);
* ``AutoAttack``: tfadv.autoattack's standard version (APGD-CE, APGD-T, FAB-T, Square 5000; native TensorFlow),
  run on the first --autoattack_examples images (0: not run). Its full figure on the first 1000 images takes
  tens of minutes on this CPU per robust classifier, so the default runs a subset and the table also quotes the
  recorded standard figure (``recorded``: the registry's ``autoattack`` column, not measured here).

Each row: adversarial accuracy (every returned image is checked inside the budget and [0, 1] before it is
scored with the classifier's ``serve``), the accuracy on the AutoAttack subset (same images for every row),
wall seconds and images/s (the first batch of each attack runs once untimed: tracing is not attack time).
Prints a Markdown table, then the JSON result (also written to --output).
"""

import json
import time

import numpy as np
from absl import flags

from tfadv import cli
from tfadv.errors import ConfigError

flags.DEFINE_string("target", None, "Zoo classifier under attack (e.g. fashion_mnist_pgd_defense_linf).", required=True)
flags.DEFINE_string("generator", None, "Zoo perturbation entry attacking --target; its budget is the benchmark's.",
                    required=True)
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_string("idx_dir", None, "Folder of MNIST-format IDX files (default: tfadv.data's search).")
flags.DEFINE_integer("num_examples", 1000, "Attack the first N test images.", lower_bound=1)
flags.DEFINE_list("refine_steps", ["1", "2", "5", "10"], "PGD steps started from the generator's x_hat, one row each.")
flags.DEFINE_integer("pgd_steps", 100, "Steps of the random-start PGD row.", lower_bound=1)
flags.DEFINE_integer("pgd_restarts", 2, "Restarts of the random-start PGD row.", lower_bound=1)
flags.DEFINE_integer("autoattack_examples", 100, "Run AutoAttack on the first M images (0: skip; M <= N).",
                     lower_bound=0)
flags.DEFINE_bool("plain_pgd", True, "Also run PGD with each --refine_steps from a random start (what x_hat adds).")
flags.DEFINE_enum("refine_loss", "untargeted", ["untargeted", "cw"], "Loss of the k-step PGD runs.")
flags.DEFINE_float("refine_step", None, "Step size of the k-step runs as a multiple of eps (default 2.5 / k).",
                   lower_bound=0.0)
flags.DEFINE_integer("batch_size", 500, "Images per batch of every attack.", lower_bound=1)
flags.DEFINE_string("output", None, "Also write the JSON result to this file.")
FLAGS = flags.FLAGS


def _batches(n, batch_size):
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _timed(attack, images, labels, batch_size):
    """attack(x, y) -> x_adv over batches; the first batch runs once untimed (tracing). Returns (x_adv, seconds)."""
    import tensorflow as tf

    parts = _batches(len(images), batch_size)
    attack(tf.constant(images[parts[0]]), tf.constant(labels[parts[0]]))
    start, out = time.perf_counter(), []
    for part in parts:
        out.append(np.asarray(attack(tf.constant(images[part]), tf.constant(labels[part]))))
    return np.concatenate(out), time.perf_counter() - start


def _predict(classifier, images, batch_size):
    import tensorflow as tf

    return np.concatenate([np.argmax(np.asarray(classifier(tf.constant(images[p]))), axis=1)
                           for p in _batches(len(images), batch_size)])


def _checked(images, adversarial, norm, eps, row):
    """``adversarial`` as float32, after checking (float64) that it lies in the budget and in [0, 1]."""
    from tfadv.autoattack import perturbation_norms

    adversarial = np.asarray(adversarial, np.float32)
    worst = float(np.max(perturbation_norms(images, adversarial, norm)))
    tolerance = 1e-5 * max(1.0, eps)
    if worst > eps + tolerance or adversarial.min() < 0.0 or adversarial.max() > 1.0:
        raise AssertionError(f"{row}: images leave the budget ({norm} {worst:.6g} > {eps:g}) or [0, 1].")
    return adversarial


def benchmark(classifier, generator, images, labels, *, norm, eps, refine_steps=(1, 2, 5, 10), pgd_steps=100,
              pgd_restarts=2, autoattack_examples=0, autoattack_settings=None, batch_size=500, plain_pgd=False,
              refine_loss="untargeted", refine_step=None, log=print):
    """The benchmark's rows on ``images`` (float32 [N, H, W, C] in [0, 1]) and int ``labels``.

    ``classifier``: images -> logits; ``generator``: images -> x_hat. ``plain_pgd`` adds PGD with each of
    ``refine_steps`` from a random start (one restart), to separate the generator's share. ``refine_loss`` (tfadv.losses) and
    ``refine_step`` (step size as a multiple of eps; default PGD's 2.5 / k) set those k-step runs. Returns a list of dicts (``attack``,
    ``adv_accuracy``, ``subset_accuracy`` on the first ``autoattack_examples`` images, ``seconds``,
    ``images_per_s``, ``num_examples``, and ``adversarial``/``correct`` arrays that the caller drops from JSON).
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
        adversarial = _checked(images[:count], adversarial, norm, eps, name)
        correct = _predict(classifier, adversarial, batch_size) == labels[:count]
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


def _format(rows, recorded):
    def cell(row, key, spec):
        return format(row[key], spec) if key in row else "-"

    lines = ["| attack | adv acc | images | acc on AA subset | vs AA subset (pts) | vs AA recorded (pts) | s "
             "| images/s | x AA speed |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['attack']} | {r['adv_accuracy']:.4f} | {r['num_examples']} | {r['subset_accuracy']:.4f} "
                     f"| {cell(r, 'vs_aa_subset_points', '+.1f')} | {cell(r, 'vs_aa_recorded_points', '+.1f')} "
                     f"| {r['seconds']:.1f} | {r['images_per_s']:.2f} | {cell(r, 'x_aa_speed', '.0f')} |")
    if recorded:
        lines.append(f"| AutoAttack (recorded, registry) | {recorded['robust_accuracy']:.4f} | "
                     f"{recorded['num_examples']} | - | - | - | {recorded['seconds']:.1f} | "
                     f"{recorded['num_examples'] / recorded['seconds']:.2f} | - |")
    return "\n".join(lines)


def main(argv):
    from tfadv import autoattack, zoo

    target, generator = zoo.entry(FLAGS.target, FLAGS.zoo_dir), zoo.entry(FLAGS.generator, FLAGS.zoo_dir)
    if generator["kind"] != "perturbation" or not generator.get("budget"):
        raise ConfigError(f"--generator {FLAGS.generator!r} is not a budgeted perturbation entry.")
    if generator.get("target") != FLAGS.target:
        raise ConfigError(f"--generator {FLAGS.generator!r} was trained against {generator.get('target')!r}, "
                          f"not --target {FLAGS.target!r}.")
    try:
        refine_steps = [int(k) for k in FLAGS.refine_steps]
    except ValueError:
        raise ConfigError(f"--refine_steps must be integers. Received: {FLAGS.refine_steps}") from None
    norm, eps = generator["budget"]["norm"], float(generator["budget"]["eps"])
    table = target["metrics"].get(f"robustness_{norm}_{eps:g}", {})
    recorded = table.get("autoattack")  # the standard version's figure, where one was recorded
    classifier, images, labels, source = autoattack.zoo_classifier_and_test_images(
        FLAGS.target, FLAGS.num_examples, FLAGS.zoo_dir, FLAGS.idx_dir, purpose="--target")
    attack = zoo.load(FLAGS.generator, FLAGS.zoo_dir)
    rows = benchmark(classifier.serve, attack.serve, images, labels, norm=norm, eps=eps, refine_steps=refine_steps,
                     pgd_steps=FLAGS.pgd_steps, pgd_restarts=FLAGS.pgd_restarts,
                     autoattack_examples=min(FLAGS.autoattack_examples, len(labels)), autoattack_settings=None,
                     batch_size=FLAGS.batch_size, plain_pgd=FLAGS.plain_pgd,
                     refine_loss=FLAGS.refine_loss, refine_step=FLAGS.refine_step)
    compare(rows, recorded)
    print(f"\n{FLAGS.generator} vs {FLAGS.target}, {norm} {eps:g}, first {len(labels)} test images "
          f"({source})")
    print(_format(rows, recorded))
    result = {"target": FLAGS.target, "generator": FLAGS.generator, "norm": norm, "eps": eps,
              "split": f"test[:{len(labels)}]", "rows": [{k: v for k, v in r.items()
                                                          if k not in ("adversarial", "correct")} for r in rows],
              "autoattack_recorded": recorded, "pgd_recorded": table.get(f"pgd{FLAGS.pgd_steps}x{FLAGS.pgd_restarts}")}
    cli.print_json(json.loads(json.dumps(result, default=float)), FLAGS.output)


if __name__ == "__main__":
    cli.run(main)
