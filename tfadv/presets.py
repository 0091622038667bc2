"""Zoo entries as Keras models: train them further, fine-tune them, hand them to other libraries.

    model = tfadv.presets.load_keras("fashion_mnist_pgd_defense_linf")   # a trainable keras.Model
    tfadv.presets.save_preset("fashion_mnist_pgd_defense_linf", "presets/pgd")  # model.keras, metadata.json,
    model = tfadv.presets.from_preset("presets/pgd")                        # MODEL_CARD.md

The zoo's source of truth stays the checksum-verified SavedModel. :func:`load_keras`
rebuilds the entry's network from the config its registry entry records (the
task's ``keras_artifact``), copies the SavedModel's variables into it in the
order the SavedModel stores them (every shape checked), and checks on a probe
batch that the Keras model's outputs equal the SavedModel's ``serve``; any
mismatch is a ZooError, never a silently different model. A preset folder is
what keras-hub ships: the model, a ``metadata.json`` (the registry entry and the
SavedModel checksum it came from) and a model card.
"""

import json
import os

import keras

from tfadv import __version__, experiments, markdown, zoo
from tfadv.errors import ZooError
from tfadv.tasks import keras_form

MODEL_FILE, METADATA_FILE, CARD_FILE = "model.keras", "metadata.json", "MODEL_CARD.md"


def load_keras(name: str, zoo_dir: str | None = None) -> keras.Model:
    """Zoo entry ``name`` as a trainable Keras model whose outputs equal its SavedModel's (checksum verified;
    :func:`tfadv.tasks.keras_form.keras_entry`)."""
    return keras_form.keras_entry(name, zoo_dir)


def save_preset(name: str, directory: str, zoo_dir: str | None = None) -> str:
    """Writes entry ``name`` as a preset folder: ``model.keras``, ``metadata.json`` and ``MODEL_CARD.md``."""
    model = load_keras(name, zoo_dir)
    os.makedirs(directory, exist_ok=True)
    model.save(os.path.join(directory, MODEL_FILE))
    entry = zoo.entry(name, zoo_dir)
    metadata = {"name": name, "tfadv_version": __version__, "from_savedmodel_sha256": entry["sha256"], "entry": entry}
    with open(os.path.join(directory, METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=2, sort_keys=True)
    with open(os.path.join(directory, CARD_FILE), "w") as f:
        f.write(model_card(name, zoo_dir))
    return directory


def from_preset(name_or_directory: str, zoo_dir: str | None = None) -> keras.Model:
    """A preset folder written by :func:`save_preset` (its ``model.keras``, safe mode on), or a zoo entry name."""
    path = os.path.join(name_or_directory, MODEL_FILE)
    if os.path.isfile(path):
        return keras.saving.load_model(path, safe_mode=True)
    if os.path.isdir(name_or_directory):
        raise ZooError(f"{name_or_directory!r} is not a preset folder: it holds no {MODEL_FILE}.")
    return load_keras(name_or_directory, zoo_dir)


_WHAT = {"classifier": "An image classifier: float32 images in [0, 1] -> logits.",
         "defended_classifier": "An adversarially trained image classifier: float32 images in [0, 1] -> logits.",
         "perturbation": "A perturbation generator: float32 images in [0, 1] -> adversarial images x_hat in [0, 1].",
         "universal": "A universal perturbation: one perturbation U added to every image, x -> x_hat in [0, 1].",
         "style": "A style transfer network: (content, style) float32 images in [0, 1] -> the stylised image."}
_LIMITS = {"classifier": "Not robust: white-box attacks within small budgets fool it (see the perturbation "
                         "entries trained against it).",
           "defended_classifier": "Robust only within the budget it was trained and measured at; trained and "
                                  "measured on 28x28 grey Fashion-MNIST, nothing else.",
           "perturbation": "A white-box attack on the target named above: its figures are against that model; "
                           "against others see the transfer columns or its transfer_<norm>_<eps> table, if any.",
           "universal": "One perturbation for every image, against the target named above.",
           "style": "Trained at the size named above on a few dozen photographs and styles, against a random-weight "
                    "loss network: judge its figure and held-out losses (style_evaluation) before relying on it."}


def _recipe(cfg: dict) -> str:
    """The config fields that say what was trained (a defense's generator only where its settings train one)."""
    cfg = experiments.migrate_loss_settings(experiments.migrate_defense_settings(cfg))
    fields = {**(cfg.get("settings") or {}), **cfg}
    keys = ["model", "method", "generator", "mode", "norm", "eps"]
    return ", ".join(f"{k}={fields[k]}" for k in keys if k in fields)


def model_card(name: str, zoo_dir: str | None = None) -> str:
    """A Markdown model card of entry ``name`` from its registry entry: what it is, its data and splits, its
    figures with the commands that measured them, and its limitations."""
    entry = zoo.entry(name, zoo_dir)
    metrics, cfg = entry["metrics"], entry["config"]
    selection = entry.get("selection") or {}
    lines = [f"# {name}", "", _WHAT.get(entry["kind"], entry["kind"]), "",
             f"- kind: `{entry['kind']}`; input: float32 {entry.get('input_shape')} in [0, 1]; "
             f"parameters: {entry.get('params', 'not recorded')}",
             f"- recipe: `{cfg.get('kind')}` config ({_recipe(cfg)})",
             f"- SavedModel sha256: `{entry['sha256']}`"]
    if entry.get("target"):
        lines.append(f"- target classifier: `{entry['target']}`")
    if entry.get("budget"):
        lines.append(f"- budget: {entry['budget']['norm']} <= {entry['budget']['eps']}")
    lines += ["", "## Data", "",
              f"- dataset: {entry['dataset']}; trained on `{cfg.get('data', {}).get('train_split', 'train')}`",
              f"- recipe and epochs chosen on: `{selection.get('split')}` ({selection.get('what') or selection.get('note', '')})",
              f"- figures measured on: `{metrics.get('split')}` ({metrics.get('num_examples')} images, "
              f"{metrics.get('data_source')})", "", "## Figures", "",
              f"Measured by `{metrics.get('command')}`:", "",
              markdown.table(("figure", "value"),
                             [(k, v) for k, v in sorted(metrics.items()) if isinstance(v, (int, float))])]
    for key, table in sorted(metrics.items()):
        if not key.startswith("robustness_"):
            continue
        cells = []
        for column, value in table.items():
            if column == "settings":
                continue
            accuracy = value.get("robust_accuracy") if isinstance(value, dict) else value
            command = value.get("command", "") if isinstance(value, dict) else table.get("settings", {}).get("command", "")
            cells.append((column, accuracy, f"`{command}`"))
        lines += ["", f"### Robust accuracy, {key.removeprefix('robustness_')}", "",
                  markdown.table(("attack", "accuracy", "command"), cells)]
    lines += ["", "## Limitations", "", f"- {_LIMITS.get(entry['kind'], 'See the registry entry.')}"]
    if selection.get("split") == "test":
        lines.append("- Trained before held-out validation: its recipe and epochs were chosen on the test split, so "
                     "its test figures are not held out.")
    return "\n".join(lines) + "\n"
