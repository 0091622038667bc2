"""tools/attack.py (tfadv-attack, what `make demo` runs) end to end on a tiny classifier and tiny IDX data."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import brightness_task
from tfadv.data import idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def attack_tool(*args, check=True, **env_vars):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", **env_vars}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "attack.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"attack failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def tiny_classifier(path, num_classes=10):
    """A small classifier of [0, 1] 28x28 images -> logits, trained briefly on the brightness task, as .keras."""
    x, y = brightness_task(256)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(num_classes)])
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y % num_classes, epochs=20, verbose=0)
    model.save(path)
    return model


def test_attack_trains_measures_reports_exports_and_checks(idx_dir, tmp_path):
    target = str(tmp_path / "clf.keras")
    classifier = tiny_classifier(target)
    workdir, zoo_dir = str(tmp_path / "run"), str(tmp_path / "zoo")
    args = [f"--target={target}", f"--workdir={workdir}", f"--zoo_dir={zoo_dir}", f"--set=data.idx_dir={idx_dir}",
            "--set=epochs=1", "--set=steps_per_epoch=2", "--set=data.batch_size=32",
            "--set=generator_kwargs.filters=4", "--pgd_examples=6", "--pgd_steps=3", "--batch_size=16",
            "--figure_examples=3"]
    out = attack_tool(*args, CI="").stdout  # not CI: only the redirected output keeps bars off
    # Output to a file or pipe gets one line per epoch, not a bar update per step (a demo log was 708 KB of them).
    assert sum("/step" in part for part in re.split(r"[\r\n]", out)) == 1, out[-2000:]

    # The report: the table with all four rows, the budget, and links to PNG files that exist.
    report_dir = os.path.join(workdir, "report")
    text = open(os.path.join(report_dir, "report.md")).read()
    assert "## Attacks at L2 <= 2.4 (fashion_mnist test)" in text
    assert "| attack | images | adv. accuracy | fooling rate | L2 mean |" in text
    for row in ("| none (clean images) | 48 |", "| generator (unet, thresholded) | 48 |",
                "| generator, first 6 | 6 |", "| PGD-3, first 6 | 6 |"):
        assert row in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    # Every attack, per-image ones too, shows where the predictions went.
    assert {"attack_generator.png", "attack_pgd.png", "confusion_on_x_hat.png", "confusion_on_pgd.png"} <= set(links)
    for link in links:
        png = tf.io.decode_png(tf.io.read_file(os.path.join(report_dir, link))).numpy()
        assert png.shape[0] > 100 and png.shape[1] > 300 and png.shape[2] == 3
    assert f"idx:{idx_dir}" in text and "tensorflow " in text and "tools/attack.py --target=" in text
    # The figures went to TensorBoard as well.
    assert os.listdir(os.path.join(workdir, "logs", "report"))

    # The working zoo entry, checked here with plain TensorFlow: recompute its adversarial accuracy.
    name = "fashion_mnist_unet_l2_vs_clf_1ep"  # experiment, target, epochs differing from the recipe
    entry = json.load(open(os.path.join(zoo_dir, "registry.json")))[name]
    assert entry["kind"] == "perturbation" and entry["budget"] == {"norm": "l2", "eps": 2.4}
    assert entry["target"] == target
    loaded = tf.saved_model.load(os.path.join(zoo_dir, entry["path"]))
    images = idx.read_idx(os.path.join(idx_dir, "t10k-images-idx3-ubyte.gz")).astype("float32")[..., None] / 255
    labels = idx.read_idx(os.path.join(idx_dir, "t10k-labels-idx1-ubyte.gz"))
    x_hat = loaded.serve(tf.constant(images)).numpy()
    l2 = np.sqrt(np.sum(np.square(x_hat - images).reshape(len(images), -1), 1))
    assert l2.max() <= 2.4 + 1e-4 and x_hat.min() >= 0 and x_hat.max() <= 1
    adv_accuracy = float(np.mean(np.argmax(classifier(x_hat), -1) == labels))
    assert entry["metrics"]["adv_accuracy"] == pytest.approx(adv_accuracy, abs=1e-6)
    assert f"| generator (unet, thresholded) | 48 | {adv_accuracy:.4f} |" in text
    assert f"tf.saved_model.load check: adv accuracy {adv_accuracy:.4f}" in out
    assert f"report:      {os.path.join(report_dir, 'report.md')}" in out
    assert f"TensorBoard: tensorboard --logdir {os.path.join(workdir, 'logs')}" in out

    # Rerunning the same command reuses the finished run instead of training over it.
    again = attack_tool(*args).stdout
    assert "holds a finished run of this config: reusing it" in again


def test_attack_refuses_a_classifier_that_breaks_the_contract(tmp_path):
    target = str(tmp_path / "three.keras")
    tiny_classifier(target, num_classes=3)
    bad = attack_tool(f"--target={target}", f"--workdir={tmp_path / 'run'}", f"--zoo_dir={tmp_path / 'zoo'}",
                      check=False)
    assert bad.returncode == 2
    assert "returns shape (3,) per batch; fashion_mnist needs one logit per class (10)" in bad.stderr
    assert "Traceback" not in bad.stderr and not os.path.exists(tmp_path / "run")
    missing = attack_tool(f"--target={tmp_path / 'nope.keras'}", f"--workdir={tmp_path / 'run'}", check=False)
    assert missing.returncode == 2 and "nope.keras' does not exist" in missing.stderr
