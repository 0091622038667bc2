"""What ``tfadv-evaluate`` measures, prints and writes for a zoo entry or a training run (``tools/evaluate.py``).

    result = evaluate(zoo_name="fashion_mnist_universal_l2", figures_dir="runs/figures")
    result.metrics      # led by what was read: zoo_dir (or workdir) and, for attacks, the budget judged against
    result.recorded     # a defended classifier's recorded robustness tables (Markdown; '' for other kinds)
    result.report       # figures_dir/report.md beside the entry's figures, when figures_dir was given

The metrics come from :func:`tfadv.evaluation.evaluate_zoo_entry` (or :func:`tfadv.runs.evaluate_run`); the
recorded tables from :func:`tfadv.defense_report.recorded_robustness`; the figures from :mod:`tfadv.figures`,
computed on the split's first batch, and the report through :func:`tfadv.report.write_report`.
"""

import dataclasses
import os

FIGURE_EXAMPLES = 8
CAPTIONS = {"attack": "Per row: x, the perturbation amplified (grey = 0), x_hat; the true class and the prediction "
            "on x and x_hat. Red frame: the attack failed.",
            "universal_perturbation": "The one perturbation U added to every image, amplified around grey.",
            "confusion_on_x_hat": "Row: true class; column: the prediction on x_hat; counts over the split.",
            "misclassified": "The classifier's mistakes in the split's first batch: true class, prediction."}
SKIPPED_COLUMNS = {"confusion", "data_source", "zoo_name", "zoo_dir", "budget", "dataset", "split"}


@dataclasses.dataclass
class Evaluation:
    """What one evaluation gives: ``metrics`` (the JSON), ``recorded`` (a defended classifier's recorded
    robustness tables, '' if none) and ``report`` (the path of report.md, None without ``figures_dir``)."""
    metrics: dict
    recorded: str = ""
    report: str | None = None


def evaluate(*, zoo_name: str | None = None, workdir: str | None = None, zoo_dir: str | None = None,
             target: str | None = None, figures_dir: str | None = None, split: str = "test", source: str = "auto",
             idx_dir: str | None = None, tfds_data_dir: str | None = None, batch_size: int = 256,
             command: str | None = None) -> Evaluation:
    """Measures zoo entry ``zoo_name`` (checksum verified; attacks against their own target or ``target``) or the
    trained model of run folder ``workdir`` on ``split``; with ``figures_dir`` (zoo entries only) also writes the
    entry's figures and report.md there (``command``: the command line the report quotes, default this process's).
    """
    from tfadv import defense_report, evaluation, runs, zoo
    from tfadv.errors import ConfigError

    if bool(zoo_name) == bool(workdir):
        raise ConfigError("Give exactly one of zoo_name (a zoo entry) or workdir (a training run folder).")
    if figures_dir and not zoo_name:
        raise ConfigError("figures_dir works with zoo_name (a zoo entry), not workdir.")
    data = dict(split=split, source=source, idx_dir=idx_dir, tfds_data_dir=tfds_data_dir, batch_size=batch_size)
    if zoo_name:
        metrics = evaluation.evaluate_zoo_entry(zoo_name, zoo_dir=zoo_dir, target=target, **data)
    else:
        metrics = runs.evaluate_run(workdir, **data)
    name = {k: metrics[k] for k in ("zoo_name", "workdir") if k in metrics}
    metrics = {**name, **what_was_read(zoo_name, workdir, zoo_dir), **metrics}
    if not zoo_name:
        return Evaluation(metrics)
    # a defended classifier: its recorded robustness, beside the clean accuracy just measured
    result = Evaluation(metrics, defense_report.recorded_robustness(zoo.entry(zoo_name, zoo_dir)))
    if figures_dir:
        result.report = write_figures(metrics, zoo_name, figures_dir, zoo_dir=zoo_dir, target=target, **data,
                                      command=command)
    return result


def what_was_read(zoo_name: str | None, workdir: str | None, zoo_dir: str | None = None) -> dict:
    """The zoo (or run) folder evaluated and, for attacks, the budget their norms are judged against."""
    from tfadv import experiments, zoo
    from tfadv.tasks import get_task

    if zoo_name:
        entry = zoo.entry(zoo_name, zoo_dir)
        read = {"zoo_dir": os.path.abspath(zoo_dir or zoo.default_zoo_dir())}
        return {**read, "budget": entry.get("budget")} if entry["kind"] in ("perturbation", "universal") else read
    cfg = experiments.load_json(os.path.join(workdir, "config.json"))
    read = {"workdir": os.path.abspath(workdir)}
    fields = get_task(cfg.kind).entry_fields(cfg)  # what the run's zoo entry would say: attacks carry a budget
    return {**read, "budget": fields["budget"]} if "budget" in fields else read


def entry_figures(metrics: dict, zoo_name: str, split_label: str, *, zoo_dir: str | None = None,
                  target: str | None = None, split: str = "test", source: str = "auto", idx_dir: str | None = None,
                  tfds_data_dir: str | None = None, batch_size: int = 256) -> dict:
    """The zoo entry's figures, computed on the first batch of ``split``: attacks x | delta | x_hat on its first
    :data:`FIGURE_EXAMPLES` images (universal ones also U and the confusion heatmap), classifiers their mistakes."""
    import numpy as np

    from tfadv import data as data_lib
    from tfadv import evaluation, figures, targets, zoo

    found = zoo.entry(zoo_name, zoo_dir)
    names = data_lib.get_spec(found["dataset"]).class_names
    ds, _ = data_lib.load(found["dataset"], split, batch_size=batch_size, source=source, idx_dir=idx_dir,
                          tfds_data_dir=tfds_data_dir)
    x, y = next(iter(ds))
    loaded = zoo.load(zoo_name, zoo_dir)  # keep it referenced while serving
    if found["kind"] in evaluation.CLASSIFIER_KINDS:
        predictions = np.argmax(loaded.serve(x), -1)
        return {"misclassified": figures.misclassified_figure(
            x.numpy(), y.numpy(), predictions, names, title=f"{zoo_name}: mistakes in {split_label} (first {len(y)})")}
    classifier = evaluation.predictor(targets.load_target(target, zoo_dir) if target
                                      else targets.load_entry_target(zoo_name, zoo_dir))
    x, y = x[:FIGURE_EXAMPLES], y.numpy()[:FIGURE_EXAMPLES]
    x_hat = loaded.serve(x)
    clean, adv = np.argmax(classifier(x), -1), np.argmax(classifier(x_hat), -1)
    budget = found.get("budget") or {}
    title = f"{zoo_name} vs {os.path.basename(metrics['target'])}" + (
        f", {budget['norm'].upper().replace('LINF', 'L-inf')} <= {budget['eps']:g}" if budget else "")
    figs = {"attack": figures.attack_figure(x.numpy(), x_hat.numpy(), y, clean, adv, names, title=title,
                                            target_class=found["config"].get("target_class"),
                                            indices=np.arange(len(y)))}
    if found["kind"] == "universal":
        figs["universal_perturbation"] = figures.perturbation_figure(loaded.perturbation().numpy())
        figs["confusion_on_x_hat"] = figures.confusion_figure(
            metrics["confusion"], names, title="true class (rows) -> prediction on x_hat (columns)")
    return figs


def write_figures(metrics: dict, zoo_name: str, figures_dir: str, *, split: str = "test", command: str | None = None,
                  **settings) -> str:
    """Writes the entry's figures (:func:`entry_figures`, ``settings`` its keywords) and report.md to
    ``figures_dir``; returns the report's path."""
    from tfadv import report

    split_label = f"{metrics.get('dataset')} {split}"
    columns = [(k, k.replace("_", " ")) for k, v in metrics.items()
               if k not in SKIPPED_COLUMNS and isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    budget = metrics.get("budget")
    heading = (f"{zoo_name} on {split_label}" + (f", judged against {budget['norm'].upper()} <= {budget['eps']:g}"
               if budget else ""))
    figs = entry_figures(metrics, zoo_name, split_label, split=split, **settings)
    return report.write_report(figures_dir, f"Zoo entry {zoo_name}", tables=[(heading, columns, [metrics])],
                               figures=figs, command=command or report.command_line(),
                               data_source=f"{split_label} from {metrics.get('data_source')}",
                               notes=[f"zoo: {metrics.get('zoo_dir')}"], captions=CAPTIONS)
