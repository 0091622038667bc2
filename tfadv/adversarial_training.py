"""Defend your own classifier: the zoo's adversarial-training recipes applied to your Keras model, and its report.

    from tfadv.adversarial_training import defend
    report = defend("my_cnn.keras", "runs/my_cnn_pgd", method="pgd", norm="linf", eps=0.1)
    report = defend("my_cnn.keras", "runs/mine_pgd", data="my_images/")   # your own labelled images

Your model (a ``keras.Model`` or a ``.keras`` file: [0, 1] images in, logits out) becomes the ``model`` of the
zoo's recipe for the method and norm (``RECIPES``), so the run is an ordinary training run (tfadv.training):
held-out validation on ``train[90%:]``, the overfitting guard where the recipe has one, TensorBoard, a crash-safe
backup (rerun to resume), ``model.keras`` at the end. Your file is only read; a model object is saved once into
the run folder as ``your_model.keras`` and never modified. The report measures your model and the defended one
on the same first test images with PGD-100 (one random start) and the standard AutoAttack (tfadv.autoattack),
beside clean accuracy and training time.

``data``: your own labelled images instead of the recipe's Fashion-MNIST, as ``tfadv-attack --train_dir`` and
:func:`tfadv.training.run_experiment` take them: an image folder (one subfolder per class, read at your model's
input size; or ``train/``, ``val/``, ``test/`` subfolders), ``(x, y)`` arrays, a ``tf.data.Dataset`` or a dict
of the parts. A single set is split per class, a seeded 10% for validation and 10% for test
(``WORKDIR/data_split.json`` records which went where); the report measures the test part.
"""

import json
import os
import time

import keras
import numpy as np

from tfadv import attacks, autoattack, byo, config, experiments, markdown, tasks, training
from tfadv.data import load as load_data
from tfadv.data import load_arrays, own
from tfadv.errors import ConfigError
from tfadv.models.classifiers import load_own_classifier

RECIPES = {("pgd", "linf"): "fashion_mnist_pgd_defense_linf", ("pgd", "l2"): "fashion_mnist_pgd_defense_l2",
           ("trades", "linf"): "fashion_mnist_trades_defense_linf", ("fgsm", "linf"): "fashion_mnist_fgsm_defense_linf"}
OWN_MODEL = "your_model.keras"  # where a model object is saved in the run folder
PGD_STEPS = 100


def defense_config(model_path: str, method: str = "pgd", norm: str = "linf", eps: float = 0.1,
                   reinitialize: bool = False, overrides: dict | None = None):
    """The zoo recipe for (``method``, ``norm``) with your classifier file as its model, at budget ``eps``."""
    if (method, norm) not in RECIPES:
        known = ", ".join(f"{m}/{n}" for m, n in RECIPES)
        raise ConfigError(f"No recipe for method {method!r} at norm {norm!r}; known: {known}.")
    cfg = experiments.get_experiment(RECIPES[method, norm])
    cfg.model, cfg.model_kwargs, cfg.eps = os.path.abspath(model_path), {"reinitialize": bool(reinitialize)}, eps
    cfg = config.override(cfg, overrides) if overrides else cfg
    return tasks.checked(cfg)


def _own_model_file(model, workdir: str) -> str:
    if isinstance(model, keras.Model):
        path = os.path.join(workdir, OWN_MODEL)
        if not os.path.exists(path):  # a resumed run keeps the copy it started from
            os.makedirs(workdir, exist_ok=True)
            model.save(path)
        return path
    if not (isinstance(model, str) and model.endswith(".keras") and os.path.isfile(model)):
        raise ConfigError(f"--model must be a keras.Model or an existing .keras file. Received: {model!r}")
    return model


def defend(model, workdir: str, *, data=None, method: str = "pgd", norm: str = "linf", eps: float = 0.1,
           reinitialize: bool = False, overrides: dict | None = None, pgd_examples: int = 1000,
           autoattack_examples: int = 1000, verbose="auto") -> dict:
    """Adversarially trains a copy of ``model`` in ``workdir`` (on ``data``, your own labelled images, when given;
    see the module doc) and returns the report (also written as report.json and report.md there). A finished run
    in ``workdir`` is measured, not trained again."""
    path = _own_model_file(model, workdir)
    cfg = defense_config(path, method, norm, eps, reinitialize, overrides)
    yours = None if data is None else _your_data(data, path, cfg.data.holdout)
    if yours is not None:
        cfg = tasks.checked(tasks.use_own_data(cfg, yours))
    _check_autoattack_applies(cfg, autoattack_examples)
    if not os.path.exists(os.path.join(workdir, "metrics.json")):
        check_contract(path, cfg, yours)
        training.run_experiment(cfg, workdir, verbose=verbose, **({} if yours is None else {"data": yours}))
    elif training.recipe_json(config.read_json(os.path.join(workdir, "config.json"))) != training.recipe_json(
            config.to_dict(cfg)):
        raise ConfigError(f"{workdir} holds a finished run of another config: choose another workdir, or delete it.")
    with open(os.path.join(workdir, "metrics.json")) as f:
        run = json.load(f)
    rows = {"your model": _robustness(path, cfg, pgd_examples, autoattack_examples, yours),
            "defended": _robustness(os.path.join(workdir, "model.keras"), cfg, pgd_examples, autoattack_examples,
                                    yours)}
    report = {"model": path, "defended_model": os.path.join(workdir, "model.keras"), "method": method,
              "norm": norm, "eps": eps, "recipe": RECIPES[method, norm], "reinitialize": reinitialize,
              "dataset": cfg.data.dataset if yours is None else yours.describe(),
              "train_split": cfg.data.train_split, "selected_on": cfg.data.validation_split,
              "test_accuracy": run["accuracy"], "train_seconds": run["train_seconds"],
              "epochs_run": run["epochs_run"], "rows": rows}
    with open(os.path.join(workdir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write(report_markdown(report))
    return report


def _check_autoattack_applies(cfg, autoattack_examples: int) -> None:
    """Refuses, before any training, a report whose standard AutoAttack cannot run on the data's classes."""
    from tfadv.autoattack.apgd import TARGETED_DLR_MIN_CLASSES

    classes = cfg.data.spec().num_classes
    if autoattack_examples and classes < TARGETED_DLR_MIN_CLASSES:
        raise ConfigError(f"Standard AutoAttack's APGD-T needs at least {TARGETED_DLR_MIN_CLASSES} classes and your "
                          f"data has {classes}: pass --autoattack_examples=0 (Python: autoattack_examples=0) to "
                          "report PGD-100 only.")


def _your_data(data, model_path: str, holdout: float) -> own.OwnData:
    """``data`` as the three parts of your own data: an image folder is read at the model's input size."""
    if isinstance(data, (str, os.PathLike)):
        shape = tuple(keras.saving.load_model(model_path, safe_mode=True, compile=False).input_shape[1:])
        if None in shape:
            raise ConfigError(f"{model_path} takes images of any size {shape}: resize your folder's images to one "
                              "size and give them as arrays (data=(x, y)).")
        return own.read_folder(os.fspath(data), shape, holdout=holdout)
    return own.from_arrays(data, holdout=holdout)


def check_contract(model_path: str, cfg, yours: own.OwnData | None = None) -> None:
    """One-line ConfigError before any training unless the model takes the data's [0, 1] images and returns
    finite logits, one per class (not probabilities, not a model that expects 0-255 pixels)."""
    spec = cfg.data.spec()
    classifier = load_own_classifier(model_path, spec.image_shape, spec.num_classes)
    if yours is None:
        ds, _ = load_data(cfg.data.dataset, f"{cfg.data.validation_split or cfg.data.train_split}", batch_size=64,
                          source=cfg.data.source, idx_dir=cfg.data.idx_dir, tfds_data_dir=cfg.data.tfds_data_dir)
        x, y = (t.numpy() for t in next(iter(ds)))
    else:
        x, y = yours.part(f"{cfg.data.validation_split}[:64]")
    byo.check_classifier(lambda images: classifier(images, training=False), x, y, spec.num_classes,
                         name=model_path, data_name=cfg.data.dataset if yours is None else yours.describe())


def _robustness(model_path: str, cfg, pgd_examples: int, autoattack_examples: int,
                yours: own.OwnData | None = None) -> dict:
    """Clean accuracy, PGD-100 and standard AutoAttack on the first test images of the config's dataset (or of
    the test part of your own data)."""
    classifier = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    n = max(pgd_examples, autoattack_examples)
    if yours is None:
        x, y, info = load_arrays(cfg.data.dataset, f"{cfg.data.eval_split}[:{n}]", source=cfg.data.source,
                                 idx_dir=cfg.data.idx_dir, tfds_data_dir=cfg.data.tfds_data_dir)
        source = f"{info.source}:{info.location}"
    else:
        x, y = yours.part(f"{cfg.data.eval_split}[:{n}]")
        source = f"{yours.source}:{yours.location}"
    frozen = lambda images: classifier(images, training=False)  # noqa: E731
    autoattack.check_logits(frozen, x[:8], model_path)
    row = {"split": f"{cfg.data.eval_split}[:{len(y)}]", "data_source": source,
           "clean_accuracy": _accuracy(frozen, x, y)}
    if pgd_examples:
        started = time.time()
        x_adv = attacks.pgd(frozen, x[:pgd_examples], y[:pgd_examples], eps=cfg.eps, norm=cfg.norm, steps=PGD_STEPS)
        row["pgd"] = {"accuracy": _accuracy(frozen, np.asarray(x_adv), y[:pgd_examples]),
                      "examples": len(y[:pgd_examples]), "steps": PGD_STEPS, "seconds": round(time.time() - started, 1)}
    if autoattack_examples:
        result = autoattack.evaluate(frozen, x[:autoattack_examples], y[:autoattack_examples], norm=cfg.norm,
                                     eps=cfg.eps, version="standard")
        row["autoattack"] = {"accuracy": result["robust_accuracy"], "examples": result["num_examples"],
                             "version": "standard", "implementation": result["settings"]["implementation"],
                             "seconds": result["seconds"], "stages": result["stages"]}
    return row


def _accuracy(classifier, x, y, batch_size: int = 500) -> float:
    predictions = np.concatenate([np.argmax(classifier(x[i:i + batch_size]), -1) for i in range(0, len(x), batch_size)])
    return float(np.mean(predictions == y))


def report_markdown(report: dict) -> str:
    """The report as a Markdown table: your model and the defended one, under the same attacks."""
    budget = f"{report['norm'].replace('linf', 'L-inf').replace('l2', 'L2')} {report['eps']:g}"
    lines = [f"# {report['method'].upper()} adversarial training of {os.path.basename(report['model'])} at {budget}",
             "", f"Recipe `{report['recipe']}` with your model ({'fresh weights' if report['reinitialize'] else 'your weights'}"
             f"), trained on {report['dataset']} `{report['train_split']}`, epochs chosen on `{report['selected_on']}`: "
             f"{report['epochs_run']} epoch(s) in this process, {report['train_seconds']} s. Test accuracy of the "
             f"defended model: {report['test_accuracy']:.4f}.", ""]
    rows = []
    for name, row in report["rows"].items():
        pgd = f"{row['pgd']['accuracy']:.4f} (first {row['pgd']['examples']})" if "pgd" in row else "not run"
        aa = (f"{row['autoattack']['accuracy']:.4f} (first {row['autoattack']['examples']})" if "autoattack" in row
              else "not run")
        rows.append((name, row["split"], f"{row['clean_accuracy']:.4f}", pgd, aa))
    lines.append(markdown.table(("model", "images", "clean", "PGD-100", "AutoAttack (standard)"), rows))
    lines += _autoattack_notes(report["rows"])
    return "\n".join(lines) + "\n"


MASKING_GAP = 0.05  # AutoAttack this far under PGD-100 on the same images: PGD's gradients mislead it


def _autoattack_notes(rows: dict) -> list[str]:
    """What each AutoAttack stage left (robust accuracy after it), and a warning where AutoAttack sits more than
    ``MASKING_GAP`` under PGD-100 on the same images: PGD then overstates the model's robustness."""
    notes = []
    for name, row in rows.items():
        aa = row.get("autoattack")
        if not aa:
            continue
        stages = ", ".join(f"{s['stage']} {s['robust_accuracy']:.4f}" for s in aa.get("stages", ()))
        if stages:
            notes.append(f"AutoAttack stages, {name} (accuracy left after each): {stages}.")
        pgd = row.get("pgd")
        if pgd and pgd["examples"] == aa["examples"] and pgd["accuracy"] - aa["accuracy"] > MASKING_GAP:
            notes.append(f"Warning: on {name}, AutoAttack leaves {aa['accuracy']:.4f}, "
                         f"{100 * (pgd['accuracy'] - aa['accuracy']):.1f} points under PGD-100 ({pgd['accuracy']:.4f}): "
                         "PGD's gradients mislead it (gradient masking), so judge this model by AutoAttack.")
    return [""] + notes if notes else []
