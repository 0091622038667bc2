"""Honest evaluation of defended classifiers: every attack a defence must survive, in one table.

Accuracy on the test split under: no attack; the co-trained generator (joint
defences); a fresh U-Net generator trained from scratch against the frozen
classifier; PGD with many steps and random restarts; the undefended
classifier's zoo perturbations of the same norm (transfer). All attacks use the
same (norm, eps).
"""

import os
import tempfile

import keras
import tensorflow as tf

from tfadv import data as data_lib
from tfadv import evaluation, experiments, zoo
from tfadv.attacks import pgd


def _accuracy_under(classifier, ds, attack=None) -> float:
    correct = total = 0
    for x, y in ds:
        x_in = attack(x, y) if attack else x
        correct += int(tf.reduce_sum(tf.cast(tf.argmax(classifier(x_in), -1, output_type=tf.int32) == y, tf.int32)))
        total += int(y.shape[0])
    return correct / total


def _fresh_generator_accuracy(name, norm, eps, epochs, test_ds) -> float:
    """Trains a thresholded U-Net from scratch against zoo classifier ``name``; its adversarial accuracy."""
    from tfadv import training

    cfg = experiments.fashion_mnist_unet_l2()
    cfg.target, cfg.norm, cfg.eps, cfg.epochs = name, norm, eps, epochs
    with tempfile.TemporaryDirectory() as workdir:
        trainer, _ = training.train_perturbation(cfg, workdir, verbose=0)
    return evaluation.measure_attack(trainer.attacker, zoo.load(name).serve, test_ds)["adv_accuracy"]


def report(defended, undefended, norm, eps, joint_workdir=None, pgd_steps=100, pgd_restarts=3,
           pgd_examples=2000, fresh_epochs=2) -> list[dict]:
    """One dict per classifier (undefended first) with the accuracy under each attack."""
    registry = zoo.read_registry()
    test_ds, _ = data_lib.load(registry[undefended]["dataset"], "test", batch_size=500)
    pgd_ds = test_ds.unbatch().take(pgd_examples).batch(500)
    transfer = sorted(n for n, e in registry.items() if e["kind"] in ("perturbation", "universal")
                      and e.get("target") == undefended and (e.get("budget") or {}).get("norm") == norm
                      and e["budget"]["eps"] <= eps + 1e-9)
    co_trained = None
    if joint_workdir:
        co_trained = keras.saving.load_model(os.path.join(joint_workdir, "attacker.keras"))
    rows = []
    for name in [undefended] + list(defended):
        classifier = zoo.load(name).serve
        row = {"classifier": name, "clean": _accuracy_under(classifier, test_ds)}
        if co_trained is not None and name != undefended:
            row["co_trained_generator"] = _accuracy_under(classifier, test_ds, lambda x, y: co_trained(x))
        row["fresh_generator"] = _fresh_generator_accuracy(name, norm, eps, fresh_epochs, test_ds)
        row[f"pgd{pgd_steps}x{pgd_restarts}"] = _accuracy_under(
            classifier, pgd_ds, lambda x, y: pgd(classifier, x, y, eps=eps, norm=norm, steps=pgd_steps,
                                                 restarts=pgd_restarts))
        for entry in transfer:
            attack = zoo.load(entry).serve
            row[f"transfer:{entry}"] = _accuracy_under(classifier, test_ds, lambda x, y: attack(x))
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table (columns: the union of the rows' keys)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[c]:.4f}" if isinstance(row.get(c), float) else str(row.get(c, "-"))
                                       for c in columns) + " |")
    return "\n".join(lines)
