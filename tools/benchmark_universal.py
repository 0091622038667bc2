"""Benchmark: universal perturbations at one budget, one table from one run (prints figures; not a test).

    python tools/benchmark_universal.py --norm=l2 --eps=2.5 [--generator_entry=fashion_mnist_universal_l2]
    python tools/benchmark_universal.py --norm=linf --eps=0.1 --fit_split=train   # baselines on all 60k

Rows: the generator-UAP zoo entry (wall time = its recorded training time),
the iterative UAP of Moosavi-Dezfooli et al. (mini-batch DeepFool variant) and
SGD on U, both run here on ``--fit_examples`` training images, or on the whole
``--fit_split`` (e.g. ``train``, the 60k images the generator's recipe saw
too, so the comparison is fair). Columns: the images each method was fitted
on, adversarial accuracy and fooling rate on the test split, ||U||, the share
of test images sent to the most common class, wall time to produce U.
"""

import time

from absl import flags

from tfadv import cli

flags.DEFINE_string("target", "fashion_mnist_small_cnn", "Zoo classifier under attack.")
flags.DEFINE_enum("norm", "l2", ["l2", "linf"], "Budget norm.")
flags.DEFINE_float("eps", 2.5, "Budget.")
flags.DEFINE_string("generator_entry", None, "Universal zoo entry to compare (default: fashion_mnist_universal_<norm>).")
flags.DEFINE_integer("fit_examples", 10000, "Training images the baselines fit U on.", lower_bound=1)
flags.DEFINE_string("fit_split", None, "Split the baselines fit U on (e.g. 'train' or 'train[:20000]'); "
                    "overrides --fit_examples.")
flags.DEFINE_string("uap_fit_split", None, "Split the iterative UAP alone fits on (default: the baselines' split): "
                    "on a 2-core CPU one pass over the 60k training images takes hours.")
flags.DEFINE_integer("uap_passes", 2, "Passes of the iterative UAP.", lower_bound=1)
flags.DEFINE_integer("sgd_epochs", 3, "Epochs of SGD-UAP.", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    import tensorflow as tf

    from tfadv import attacks, evaluation, zoo
    from tfadv import data as data_lib
    from tfadv.budgets import per_example_norm

    classifier = zoo.load(FLAGS.target)
    dataset = zoo.entry(FLAGS.target)["dataset"]
    test_ds, info = data_lib.load(dataset, "test", batch_size=500)
    fit_split = FLAGS.fit_split or f"train[:{FLAGS.fit_examples}]"
    fit_ds, fit_info = data_lib.load(dataset, fit_split, batch_size=128, shuffle=True)
    fit_images = fit_info.num_examples
    uap_ds, uap_images = fit_ds, fit_images
    if FLAGS.uap_fit_split:
        uap_ds, uap_info = data_lib.load(dataset, FLAGS.uap_fit_split, batch_size=128, shuffle=True)
        uap_images = uap_info.num_examples
    num_classes = data_lib.get_spec(dataset).num_classes

    def row(name, u, seconds, images):
        attack = lambda x: tf.clip_by_value(x + u, 0.0, 1.0)  # noqa: E731
        m = evaluation.measure_attack(attack, classifier.serve, test_ds, confusion=True)
        result = (name, images, m["adv_accuracy"], m["fooling_rate"], float(per_example_norm(u, FLAGS.norm)[0]),
                  m["top_destination_share"], seconds)
        print("row:", result, flush=True)  # each row as soon as it is measured: the baselines take long
        return result

    rows = []
    entry_name = FLAGS.generator_entry or f"{dataset}_universal_{FLAGS.norm}"
    if entry_name in zoo.read_registry():
        entry = zoo.entry(entry_name)
        generator_uap = zoo.load(entry_name)  # keep a reference: a temporary is collected mid-call
        u = generator_uap.perturbation()
        train_images = entry["config"]["data"].get("train_split", "?")  # a split name, e.g. train[:90%]
        rows.append(row(f"generator ({entry_name})", u, entry["metrics"].get("train_seconds", float("nan")),
                        train_images))
    else:
        print(f"(no zoo entry {entry_name!r}: generator row skipped)")
    start = time.perf_counter()
    u, history = attacks.universal_iterative(classifier.serve, uap_ds, eps=FLAGS.eps, norm=FLAGS.norm,
                                             num_classes=num_classes, max_passes=FLAGS.uap_passes)
    rows.append(row(f"iterative UAP ({len(history)} passes, fit fooling rates {history})", u,
                    time.perf_counter() - start, uap_images))
    start = time.perf_counter()
    u = attacks.universal_sgd(classifier.serve, fit_ds, eps=FLAGS.eps, norm=FLAGS.norm, epochs=FLAGS.sgd_epochs,
                              learning_rate=0.01 if FLAGS.norm == "linf" else 0.05)
    rows.append(row(f"SGD-UAP ({FLAGS.sgd_epochs} epochs)", u, time.perf_counter() - start, fit_images))

    print(f"target {FLAGS.target}, {dataset} test ({info.source}), budget {FLAGS.norm} {FLAGS.eps}\n")
    print("| method | fit images | adv accuracy | fooling rate | norm of U | top destination share | "
          "seconds to produce U |")
    print("|---|---|---|---|---|---|---|")
    for name, images, acc, fool, size, top, seconds in rows:
        print(f"| {name} | {images} | {acc:.4f} | {fool:.4f} | {size:.3f} | {top:.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    cli.run(main)
