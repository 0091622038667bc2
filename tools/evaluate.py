"""Evaluates a zoo entry or a trained run on a dataset split.

    tfadv-evaluate --zoo_name=fashion_mnist_small_cnn          # checksum-verified zoo SavedModel
    tfadv-evaluate --workdir=runs/fmnist                        # WORKDIR's trained model + its config
    tfadv-evaluate --zoo_name=fashion_mnist_unet_l2 --target=other_classifier   # transfer
    tfadv-evaluate --zoo_name=fashion_mnist_universal_l2 --figures_dir=runs/figures  # + figures and report.md

Prints the metrics as JSON, led by what was read: the zoo folder (``zoo_dir``) or run folder, and for
attacks the ``budget`` ({norm, eps}) their norms are judged against (null: the entry guarantees none). For a
defended classifier it also prints its recorded robustness tables (PGD, generators, AutoAttack) to stderr.
"""

import os
import sys

from absl import flags

from tfadv import cli

flags.DEFINE_string("zoo_name", None, "Zoo entry to evaluate (its SavedModel's serve endpoint).")
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_string("workdir", None, "A training run folder holding model.keras and config.json.")
flags.DEFINE_string("split", "test", "Split to evaluate, e.g. test or test[:1000].")
flags.DEFINE_enum("source", "auto", ["auto", "tfds", "keras", "idx"], "Data source (see tfadv.data).")
flags.DEFINE_string("idx_dir", None, "Folder of MNIST-format IDX files.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data_dir with prepared datasets.")
flags.DEFINE_integer("batch_size", 256, "Evaluation batch size.", lower_bound=1)
flags.DEFINE_string("target", None, "For perturbation entries: evaluate against this zoo classifier instead of "
                    "the entry's own target (transfer to another model).")
flags.DEFINE_string("output", None, "Also write the metrics as JSON to this file.")
flags.DEFINE_string("figures_dir", None, "With --zoo_name: write the entry's figures (attacks: x | delta | x_hat on "
                    "the split's first 8 images, universal ones also U and the confusion heatmap; classifiers: their "
                    "mistakes) and a report.md beside them to this folder.")
flags.register_validator("figures_dir", lambda v: v is None or bool(flags.FLAGS["zoo_name"].value),
                         message="--figures_dir works with --zoo_name (a zoo entry), not --workdir.")
flags.register_multi_flags_validator(["zoo_name", "workdir"], lambda v: bool(v["zoo_name"]) != bool(v["workdir"]),
                                     message="Give exactly one of --zoo_name or --workdir.")
FLAGS = flags.FLAGS


def what_was_read() -> dict:
    """The zoo (or run) folder evaluated and, for attacks, the budget their norms are judged against."""
    from tfadv import experiments, zoo
    from tfadv.tasks import get_task

    if FLAGS.zoo_name:
        entry = zoo.entry(FLAGS.zoo_name, FLAGS.zoo_dir)
        read = {"zoo_dir": os.path.abspath(FLAGS.zoo_dir or zoo.default_zoo_dir())}
        return {**read, "budget": entry.get("budget")} if entry["kind"] in ("perturbation", "universal") else read
    cfg = experiments.load_json(os.path.join(FLAGS.workdir, "config.json"))
    read = {"workdir": os.path.abspath(FLAGS.workdir)}
    fields = get_task(cfg.kind).entry_fields(cfg)  # what the run's zoo entry would say: attacks carry a budget
    return {**read, "budget": fields["budget"]} if "budget" in fields else read


FIGURE_EXAMPLES = 8
CAPTIONS = {"attack": "Per row: x, the perturbation amplified (grey = 0), x_hat; the true class and the prediction "
            "on x and x_hat. Red frame: the attack failed.",
            "universal_perturbation": "The one perturbation U added to every image, amplified around grey.",
            "confusion_on_x_hat": "Row: true class; column: the prediction on x_hat; counts over the split.",
            "misclassified": "The classifier's mistakes in the split's first batch: true class, prediction."}


def entry_figures(metrics: dict, split_label: str) -> dict:
    """The zoo entry's figures, computed on the first batch of --split."""
    import numpy as np

    from tfadv import data as data_lib
    from tfadv import evaluation, figures, targets, zoo

    found = zoo.entry(FLAGS.zoo_name, FLAGS.zoo_dir)
    names = data_lib.get_spec(found["dataset"]).class_names
    ds, _ = data_lib.load(found["dataset"], FLAGS.split, batch_size=FLAGS.batch_size, source=FLAGS.source,
                          idx_dir=FLAGS.idx_dir, tfds_data_dir=FLAGS.tfds_data_dir)
    x, y = next(iter(ds))
    loaded = zoo.load(FLAGS.zoo_name, FLAGS.zoo_dir)  # keep it referenced while serving
    if found["kind"] in evaluation.CLASSIFIER_KINDS:
        predictions = np.argmax(loaded.serve(x), -1)
        return {"misclassified": figures.misclassified_figure(
            x.numpy(), y.numpy(), predictions, names, title=f"{FLAGS.zoo_name}: mistakes in "
            f"{split_label.replace('[', '(').replace(']', ')')} (first {len(y)})")}  # the font has no brackets
    target_name = metrics["target"]
    target = evaluation.predictor(targets.load_target(FLAGS.target, FLAGS.zoo_dir) if FLAGS.target
                                  else targets.load_entry_target(FLAGS.zoo_name, FLAGS.zoo_dir))
    x, y = x[:FIGURE_EXAMPLES], y.numpy()[:FIGURE_EXAMPLES]
    x_hat = loaded.serve(x)
    clean, adv = np.argmax(target(x), -1), np.argmax(target(x_hat), -1)
    budget = found.get("budget") or {}
    title = f"{FLAGS.zoo_name} vs {os.path.basename(target_name)}" + (
        f", {budget['norm'].upper().replace('LINF', 'L-inf')} <= {budget['eps']:g}" if budget else "")
    figs = {"attack": figures.attack_figure(x.numpy(), x_hat.numpy(), y, clean, adv, names, title=title,
                                            target_class=found["config"].get("target_class"),
                                            indices=np.arange(len(y)))}
    if found["kind"] == "universal":
        figs["universal_perturbation"] = figures.perturbation_figure(loaded.perturbation().numpy())
        figs["confusion_on_x_hat"] = figures.confusion_figure(
            metrics["confusion"], names, title="true class (rows) -> prediction on x_hat (columns)")
    return figs


def write_figures(metrics: dict) -> str:
    """Writes the entry's figures and report.md to --figures_dir; returns the report's path."""
    from tfadv import report

    split_label = f"{metrics.get('dataset')} {FLAGS.split}"
    skipped = {"confusion", "data_source", "zoo_name", "zoo_dir", "budget", "dataset", "split"}
    columns = [(k, k.replace("_", " ")) for k, v in metrics.items()
               if k not in skipped and isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    budget = metrics.get("budget")
    heading = (f"{FLAGS.zoo_name} on {split_label}" + (f", judged against {budget['norm'].upper()} <= {budget['eps']:g}"
               if budget else ""))
    figs = entry_figures(metrics, split_label)
    return report.write_report(FLAGS.figures_dir, f"Zoo entry {FLAGS.zoo_name}", tables=[(heading, columns, [metrics])],
                               figures=figs, command=report.command_line(),
                               data_source=f"{split_label} from {metrics.get('data_source')}",
                               notes=[f"zoo: {metrics.get('zoo_dir')}"], captions=CAPTIONS)


def main(argv):
    from tfadv import evaluation, runs

    data_flags = dict(split=FLAGS.split, source=FLAGS.source, idx_dir=FLAGS.idx_dir,
                      tfds_data_dir=FLAGS.tfds_data_dir, batch_size=FLAGS.batch_size)
    if FLAGS.zoo_name:
        metrics = evaluation.evaluate_zoo_entry(FLAGS.zoo_name, zoo_dir=FLAGS.zoo_dir, target=FLAGS.target,
                                                **data_flags)
    else:
        metrics = runs.evaluate_run(FLAGS.workdir, **data_flags)
    name = {k: metrics[k] for k in ("zoo_name", "workdir") if k in metrics}
    metrics = {**name, **what_was_read(), **metrics}
    cli.print_json(metrics, FLAGS.output)
    if FLAGS.zoo_name:
        from tfadv import defense_report, zoo

        table = defense_report.recorded_robustness(zoo.entry(FLAGS.zoo_name, FLAGS.zoo_dir))
        if table:  # a defended classifier: its recorded robustness, beside the clean accuracy just measured
            print(f"\nRecorded robustness of {FLAGS.zoo_name} (zoo/registry.json):\n{table}", file=sys.stderr)
    if FLAGS.figures_dir:
        print(f"report: {write_figures(metrics)}", file=sys.stderr)  # stdout stays JSON


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
