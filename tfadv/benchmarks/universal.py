"""Universal perturbations at one budget: a generator's U against the iterative UAP and SGD-UAP
(``tools/benchmark_universal.py``).

    rows = benchmark(classifier, test_ds, norm="l2", eps=2.5, num_classes=10, fit_ds=ds, fit_images=10000,
                     uap_ds=ds, uap_images=10000, generator_entry="fashion_mnist_universal_l2")
    print(table(rows))

Rows: the generator-UAP zoo entry (its wall time: the recorded training time), the iterative UAP of
Moosavi-Dezfooli et al. (mini-batch DeepFool variant) and SGD on U, both fitted here. Each row: the images U was
fitted on, adversarial accuracy and fooling rate on the test set, ||U||, the share of test images sent to the most
common class, and the seconds it took to produce U.
"""

import time

import tensorflow as tf

from tfadv import markdown


def benchmark(classifier, test_ds, *, norm: str, eps: float, num_classes: int, fit_ds, fit_images, uap_ds,
              uap_images, generator_entry: str, uap_passes: int = 2, sgd_epochs: int = 3, log=print) -> list[tuple]:
    """The rows (method, fit images, adv accuracy, fooling rate, norm of U, top destination share, seconds) of
    ``classifier`` (images -> logits) on ``test_ds``: SGD-UAP fits on ``fit_ds`` (``fit_images``: what the table
    says it saw), the iterative UAP on ``uap_ds``; ``generator_entry``: the universal zoo entry of the first row
    (skipped, and said so, when the zoo has none). Each row is logged as soon as it is measured (the baselines
    take long)."""
    from tfadv import evaluation, universal_attacks, zoo
    from tfadv.budgets import per_example_norm

    def row(name, u, seconds, images):
        attack = lambda x: tf.clip_by_value(x + u, 0.0, 1.0)  # noqa: E731
        m = evaluation.measure_attack(attack, classifier, test_ds, confusion=True)
        result = (name, images, m["adv_accuracy"], m["fooling_rate"], float(per_example_norm(u, norm)[0]),
                  m["top_destination_share"], seconds)
        log(f"row: {result}")
        return result

    rows = []
    if generator_entry in zoo.read_registry():
        entry = zoo.entry(generator_entry)
        generator_uap = zoo.load(generator_entry)  # keep a reference: a temporary is collected mid-call
        u = generator_uap.perturbation()
        train_images = entry["config"]["data"].get("train_split", "?")  # a split name, e.g. train[:90%]
        rows.append(row(f"generator ({generator_entry})", u, entry["metrics"].get("train_seconds", float("nan")),
                        train_images))
    else:
        log(f"(no zoo entry {generator_entry!r}: generator row skipped)")
    start = time.perf_counter()
    u, history = universal_attacks.universal_iterative(classifier, uap_ds, eps=eps, norm=norm,
                                             num_classes=num_classes, max_passes=uap_passes)
    rows.append(row(f"iterative UAP ({len(history)} passes, fit fooling rates {history})", u,
                    time.perf_counter() - start, uap_images))
    start = time.perf_counter()
    u = universal_attacks.universal_sgd(classifier, fit_ds, eps=eps, norm=norm, epochs=sgd_epochs,
                              learning_rate=0.01 if norm == "linf" else 0.05)
    rows.append(row(f"SGD-UAP ({sgd_epochs} epochs)", u, time.perf_counter() - start, fit_images))
    return rows


def table(rows) -> str:
    """The rows of :func:`benchmark` as a Markdown table."""
    return markdown.table(("method", "fit images", "adv accuracy", "fooling rate", "norm of U",
                           "top destination share", "seconds to produce U"),
                          [(name, images, f"{acc:.4f}", f"{fool:.4f}", f"{size:.3f}", f"{top:.3f}", f"{seconds:.0f}")
                           for name, images, acc, fool, size, top, seconds in rows])
