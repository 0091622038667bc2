"""One report per evaluation: a Markdown file beside its PNG figures.

    path = write_report("runs/x/report", "Attack on fashion_mnist_small_cnn",
                        tables=[("Attacks at L2 <= 2.4", columns, rows)], figures={"attack": image},
                        command="tfadv-attack ...", data_source="idx:/usr/share/...")

The report states what a reader needs to trust the figures: the metrics table
with the budget judged against, the command that made it, the data source and
the versions of tfadv, TensorFlow and Keras.
"""

import os
import platform
import sys

import numpy as np

from tfadv import markdown
from tfadv.data.images import write_png

REPORT_FILE = "report.md"


def versions() -> dict:
    """Versions of tfadv, TensorFlow, Keras, NumPy and Python in this process."""
    import keras
    import tensorflow as tf

    from tfadv import __version__

    return {"tfadv": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def format_value(value) -> str:
    """A table cell: floats below 10 (accuracies, norms) with 4 decimals, up to 1000 with 1, larger ones rounded."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_table(columns, rows) -> str:
    """A Markdown table of dict ``rows``: ``columns`` are (key, header) pairs; cells go through
    :func:`format_value` (missing keys: empty cells)."""
    return markdown.table([header for _, header in columns],
                          ([format_value(row.get(key)) for key, _ in columns] for row in rows))


def command_line() -> str:
    """The command that started this process, as a user would type it."""
    if not sys.argv:
        return "python"
    program = sys.argv[0]
    program = f"python {os.path.relpath(program)}" if program.endswith(".py") else os.path.basename(program)
    return " ".join([program] + sys.argv[1:])


def write_report(report_dir: str, title: str, *, tables, figures: dict, command: str, data_source: str,
                 notes=(), captions: dict | None = None) -> str:
    """Writes ``report_dir/report.md`` and one PNG per figure; returns the report's path.

    Args:
        tables: (heading, columns, rows) triples, see :func:`markdown_table`; the
            heading names the budget the figures are judged against.
        figures: ``{name: image [H, W, 3] in [0, 1]}`` written as ``name.png`` (None values are skipped).
        command: the command that produced the figures; data_source: where the images came from.
        notes: extra lines (Markdown), a bullet list after the tables.
        captions: ``{name: text}`` shown above each figure.
    """
    os.makedirs(report_dir, exist_ok=True)
    parts = [f"# {title}", ""]
    for heading, columns, rows in tables:
        parts += [f"## {heading}", "", markdown_table(columns, rows), ""]
    parts += [f"- {note}" for note in notes] + ([""] if notes else [])
    for name, image in figures.items():
        if image is None:
            continue
        file = f"{name}.png"
        write_png(os.path.join(report_dir, file), image)
        parts += [f"## {name}", ""] + ([(captions or {}).get(name), ""] if (captions or {}).get(name) else [])
        parts += [f"![{name}]({file})", ""]
    parts += ["## How this was made", "", f"- command: `{command}`", f"- data: {data_source}",
              "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()), ""]
    path = os.path.join(report_dir, REPORT_FILE)
    with open(path, "w") as f:
        f.write("\n".join(parts))
    return path


def epochs_note(workdir: str, zoo_name: str, zoo_dir: str | None = None) -> str:
    """One paragraph setting a training run's accuracy beside the zoo entry trained with the full recipe.

    A short run (``make classifier EPOCHS=1``) lands far below the zoo's figure; this says why instead of
    leaving the user to guess.
    """
    import json

    from tfadv import zoo

    with open(os.path.join(workdir, "metrics.json")) as f:
        run = json.load(f)
    entry = zoo.entry(zoo_name, zoo_dir)
    recipe_epochs, zoo_accuracy = entry["config"].get("epochs"), entry["metrics"]["accuracy"]
    epochs = run.get("epochs_run")
    text = (f"This run: {epochs} epoch(s) -> {run['accuracy']:.2%} test accuracy. Zoo entry {zoo_name}: "
            f"{recipe_epochs} epochs -> {zoo_accuracy:.2%}.")
    if epochs is not None and recipe_epochs and epochs < recipe_epochs:
        text += (f" The recipe's learning-rate schedule (warm-up, then cosine decay) and its strong regularisation "
                 f"(weight decay, label smoothing, dropout, augmentation) are tuned for {recipe_epochs} epochs: a "
                 f"{epochs}-epoch run is a smoke test of the pipeline, not of the model; expect a lower figure.")
    return text
