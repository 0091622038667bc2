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
    from tfadv import data as data_lib
    from tfadv import zoo
    from tfadv.benchmarks import universal

    classifier = zoo.load(FLAGS.target)
    dataset = zoo.entry(FLAGS.target)["dataset"]
    test_ds, info = data_lib.load(dataset, "test", batch_size=500)
    fit_split = FLAGS.fit_split or f"train[:{FLAGS.fit_examples}]"
    fit_ds, fit_info = data_lib.load(dataset, fit_split, batch_size=128, shuffle=True)
    uap_ds, uap_info = (data_lib.load(dataset, FLAGS.uap_fit_split, batch_size=128, shuffle=True)
                        if FLAGS.uap_fit_split else (fit_ds, fit_info))
    rows = universal.benchmark(classifier.serve, test_ds, norm=FLAGS.norm, eps=FLAGS.eps,
                               num_classes=data_lib.get_spec(dataset).num_classes, fit_ds=fit_ds,
                               fit_images=fit_info.num_examples, uap_ds=uap_ds, uap_images=uap_info.num_examples,
                               generator_entry=FLAGS.generator_entry or f"{dataset}_universal_{FLAGS.norm}",
                               uap_passes=FLAGS.uap_passes, sgd_epochs=FLAGS.sgd_epochs,
                               log=lambda line: print(line, flush=True))
    print(f"target {FLAGS.target}, {dataset} test ({info.source}), budget {FLAGS.norm} {FLAGS.eps}\n")
    print(universal.table(rows))


if __name__ == "__main__":
    cli.run(main)
