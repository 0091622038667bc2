"""Defend your own classifier (tfadv.adversarial_training, tfadv-defend) with small synthetic models and data."""

import hashlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import make_idx_dataset
from tfadv.adversarial_training import defend, report_markdown
from tfadv.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", "CI": "1"}
QUICK = {"data.batch_size": 32, "epochs": 1, "steps_per_epoch": 4}


def own_cnn(outputs=10, activation=None):
    """A user's plain Keras CNN: nothing of tfadv in it."""
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(6, 3, activation="relu", name="mine"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(outputs, activation=activation)])


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return make_idx_dataset(tmp_path_factory.mktemp("idx"), n_train=320, n_test=64)


def test_tfadv_defend_trains_a_copy_of_your_model_and_reports_both(idx_dir, tmp_path):
    path = tmp_path / "my_cnn.keras"
    own_cnn().save(path)
    before = sha256(path)
    workdir = tmp_path / "run"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "defend.py"), f"--model={path}",
                           f"--workdir={workdir}", f"--set=data.idx_dir={idx_dir}", "--set=data.batch_size=32",
                           "--epochs=1", "--steps_per_epoch=4", "--pgd_examples=16", "--autoattack_examples=8",
                           "--verbose=0"], env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sha256(path) == before  # your file is only read
    defended = keras.saving.load_model(workdir / "model.keras")
    mine = keras.saving.load_model(path)
    assert [type(layer) for layer in defended.layers] == [type(layer) for layer in mine.layers]
    assert defended.count_params() == mine.count_params() and defended.get_layer("mine")  # your architecture
    assert any(not np.array_equal(a, b) for a, b in zip(defended.get_weights(), mine.get_weights()))
    report = json.loads((workdir / "report.json").read_text())
    assert (report["method"], report["norm"], report["eps"]) == ("pgd", "linf", 0.1)
    assert report["recipe"] == "fashion_mnist_pgd_defense_linf" and report["selected_on"] == "train[90%:]"
    for row in report["rows"].values():
        assert row["pgd"]["examples"] == 16 and row["pgd"]["steps"] == 100
        assert row["autoattack"]["version"] == "standard" and row["autoattack"]["examples"] == 8
        assert row["autoattack"]["accuracy"] <= row["pgd"]["accuracy"] + 0.5 and row["split"] == "test[:16]"
    table = (workdir / "report.md").read_text()
    assert "| your model | test[:16] |" in table and "| defended | test[:16] |" in table
    assert table in proc.stdout


def test_defend_takes_a_model_object_and_never_modifies_it(idx_dir, tmp_path):
    model = own_cnn()
    weights = [w.copy() for w in model.get_weights()]
    report = defend(model, str(tmp_path / "run"), method="fgsm", overrides={**QUICK, "data.idx_dir": idx_dir},
                    pgd_examples=8, autoattack_examples=0, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert report["model"] == str(tmp_path / "run" / "your_model.keras") and report["recipe"].startswith(
        "fashion_mnist_fgsm")
    assert "autoattack" not in report["rows"]["defended"]
    again = defend(model, str(tmp_path / "run"), method="fgsm", overrides={**QUICK, "data.idx_dir": idx_dir},
                   pgd_examples=8, autoattack_examples=0, verbose=0)  # a finished run is measured, not retrained
    accuracies = lambda r: {k: (row["clean_accuracy"], row["pgd"]["accuracy"]) for k, row in r["rows"].items()}  # noqa: E731
    assert accuracies(again) == accuracies(report) and again["train_seconds"] == report["train_seconds"]
    with pytest.raises(ConfigError, match="holds a finished run of another config"):
        defend(model, str(tmp_path / "run"), method="fgsm", eps=0.05, overrides={**QUICK, "data.idx_dir": idx_dir},
               pgd_examples=8, autoattack_examples=0, verbose=0)


@pytest.mark.parametrize("model,message", [
    (lambda: own_cnn(outputs=5), r"returns shape \(5,\) per image; the data has 10 classes"),
    (lambda: own_cnn(activation="softmax"), "returns probabilities"),
])
def test_a_model_that_breaks_the_contract_is_refused_before_training(idx_dir, tmp_path, model, message):
    with pytest.raises(ConfigError, match=message):
        defend(model(), str(tmp_path / "run"), overrides={**QUICK, "data.idx_dir": idx_dir}, verbose=0)
    assert not (tmp_path / "run" / "logs").exists()


def test_tfadv_defend_trains_on_your_image_folder_at_your_models_size(tmp_path):
    """--train_dir: a folder of 20x20 RGB images, one subfolder per class, read at the model's 16x16 input."""
    from test_train_dir import CLASSES, classifier, write_folder

    folder = write_folder(tmp_path / "my_images", 10, (20, 20, 3))
    path = tmp_path / "mine.keras"
    classifier(str(path), (16, 16, 3))
    workdir = tmp_path / "run"

    def tfadv_defend(*args):
        return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "defend.py"), f"--model={path}",
                               f"--workdir={workdir}", f"--train_dir={folder}", "--set=data.batch_size=8",
                               "--epochs=1", "--steps_per_epoch=2", "--pgd_examples=3", "--verbose=0", *args],
                              env=ENV, capture_output=True, text=True, timeout=600)

    refused = tfadv_defend("--autoattack_examples=3")  # 3 classes: APGD-T's targeted DLR needs 4
    assert refused.returncode == 2 and refused.stderr.count("Error:") == 1, refused.stderr[-3000:]
    assert "needs at least 4 classes and your data has 3: pass --autoattack_examples=0" in refused.stderr
    assert not os.path.exists(workdir)  # refused before any training
    proc = tfadv_defend("--autoattack_examples=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resized the images of" in proc.stderr  # 20x20 files, a 16x16 model: said, not silent
    config = json.loads((workdir / "config.json").read_text())
    assert config["data"]["dataset"] == "own" and config["data"]["image_dir"] == folder
    assert config["data"]["class_names"] == list(CLASSES) and config["data"]["image_shape"] == [16, 16, 3]
    split = json.loads((workdir / "data_split.json").read_text())
    assert split["counts"] == {"train": 24, "validation": 3, "test": 3} and split["location"] == folder
    report = json.loads((workdir / "report.json").read_text())
    assert report["dataset"].startswith(f"{folder}: 3 classes; train 24, validation 3, test 3") and (report["train_split"], report["selected_on"]) == (
        "train", "validation")
    for row in report["rows"].values():  # both models measured on the held-out test part of your folder
        assert row["split"] == "test[:3]" and row["data_source"] == f"image_folder:{folder}"
        assert row["pgd"]["examples"] == 3 and "autoattack" not in row
    assert keras.saving.load_model(workdir / "model.keras").input_shape == (None, 16, 16, 3)


def test_report_markdown_is_one_table_from_the_house_writer():
    report = {"model": "/x/my.keras", "method": "pgd", "norm": "linf", "eps": 0.1, "reinitialize": False,
              "recipe": "fashion_mnist_pgd_defense_linf", "dataset": "fashion_mnist", "train_split": "train[:90%]",
              "selected_on": "train[90%:]", "test_accuracy": 0.81234, "train_seconds": 12.5, "epochs_run": 1,
              "rows": {"your model": {"split": "test[:16]", "clean_accuracy": 0.9, "pgd": {"accuracy": 0.1, "examples": 16},
                                      "autoattack": {"accuracy": 0.05, "examples": 8}},
                       "defended": {"split": "a|b", "clean_accuracy": 0.8, "pgd": {"accuracy": 0.5, "examples": 16}}}}
    text = report_markdown(report)
    assert text.startswith("# PGD adversarial training of my.keras at L-inf 0.1\n\n") and text.endswith(" |\n")
    assert text.split("\n\n")[-1] == (
        "| model | images | clean | PGD-100 | AutoAttack (standard) |\n|---|---|---|---|---|\n"
        "| your model | test[:16] | 0.9000 | 0.1000 (first 16) | 0.0500 (first 8) |\n"
        "| defended | a\\|b | 0.8000 | 0.5000 (first 16) | not run |\n")  # a | inside a cell cannot split it


def test_report_names_each_autoattack_stage_and_warns_when_pgd_overstates_robustness():
    stages = [{"stage": "clean", "robust_accuracy": 0.9}, {"stage": "apgd-ce", "robust_accuracy": 0.7},
              {"stage": "apgd-t", "robust_accuracy": 0.58}, {"stage": "square", "robust_accuracy": 0.56}]
    row = {"split": "test[:100]", "clean_accuracy": 0.9, "pgd": {"accuracy": 0.71, "examples": 100},
           "autoattack": {"accuracy": 0.56, "examples": 100, "stages": stages}}
    close = {**row, "pgd": {"accuracy": 0.6, "examples": 100}}
    report = {"model": "my.keras", "method": "pgd", "norm": "linf", "eps": 0.1, "reinitialize": False,
              "recipe": "r", "dataset": "d", "train_split": "t", "selected_on": "v", "test_accuracy": 0.9,
              "train_seconds": 1.0, "epochs_run": 1, "rows": {"defended": row, "yours": close}}
    notes = report_markdown(report).split(" |\n\n")[-1].splitlines()
    assert notes == [
        "AutoAttack stages, defended (accuracy left after each): clean 0.9000, apgd-ce 0.7000, apgd-t 0.5800, "
        "square 0.5600.",
        "Warning: on defended, AutoAttack leaves 0.5600, 15.0 points under PGD-100 (0.7100): PGD's gradients "
        "mislead it (gradient masking), so judge this model by AutoAttack.",
        "AutoAttack stages, yours (accuracy left after each): clean 0.9000, apgd-ce 0.7000, apgd-t 0.5800, "
        "square 0.5600."]  # 4 points under PGD: no warning
