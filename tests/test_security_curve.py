"""Security curves: each point equals the attack run alone at that budget; the figure and the registry show it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import brightness_classifier, brightness_task
from tfadv import autoattack, figures, security_curve, zoo
from tfadv.attacks import pgd
from tfadv.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1"}
QUICK_AA = {"stages": ["apgd-ce"], "apgd_iter": 5}


@pytest.fixture(scope="module")
def model():
    return brightness_classifier()


def test_each_point_is_the_attack_run_alone_at_that_budget(model):
    images, labels = brightness_task(24)
    curve = security_curve.measure(model, images, labels, norm="linf", eps_values=[0.01, 0.05, 0.3], pgd_steps=5,
                                   pgd_restarts=2, autoattack_examples=16, version="custom",
                                   autoattack_settings=QUICK_AA, batch_size=8)
    assert curve["eps"] == [0.01, 0.05, 0.3] and curve["num_examples"] == 24 and curve["autoattack_examples"] == 16
    for i, eps in enumerate(curve["eps"]):
        alone = [np.argmax(model(pgd(model, images[s:s + 8], labels[s:s + 8], eps=eps, norm="linf", steps=5,
                                     restarts=2)), -1) for s in range(0, 24, 8)]
        assert curve["pgd5x2"][i] == pytest.approx(np.mean(np.concatenate(alone) == labels))
        aa = autoattack.evaluate(model, images[:16], labels[:16], norm="linf", eps=eps, version="custom",
                                 batch_size=8, **QUICK_AA)
        assert curve["autoattack_custom"][i] == aa["robust_accuracy"]
    assert curve["autoattack_settings"]["stages"] == ["apgd-ce"] and "eps" not in curve["autoattack_settings"]
    # the budget matters: the brightness task's classes sit 0.25 apart, so 0.3 breaks what 0.01 cannot
    assert curve["pgd5x2"][0] > curve["clean"] - 0.1 and curve["pgd5x2"][-1] < 0.2, curve
    json.dumps(curve)  # JSON-ready for the registry


def test_budgets_must_be_valid_distinct_and_increasing():
    for bad in ([0.1], [0.2, 0.1], [0.1, 0.1], [0.1, float("nan")], [0.1, 2.0]):
        with pytest.raises(ConfigError):
            security_curve.check_eps_values("linf", bad, image_shape=(28, 28, 1))
    assert security_curve.check_eps_values("l2", [0.5, 1, 2]) == [0.5, 1.0, 2.0]


def test_figure_draws_each_attack_where_its_accuracy_is():
    curve = {"norm": "linf", "eps": [0.1, 0.2], "clean": 0.5, "pgd100x2": [1.0, 0.0], "autoattack": [0.0, 1.0]}
    image = security_curve.figure(curve, title="T", height=300, width=480)
    assert image.shape == (300, 480, 3) and image.min() >= 0 and image.max() <= 1
    top, bottom, left, right = 44, 300 - 34, 52, 480 - 16
    pgd_color, aa_color = security_curve.COLORS[0], security_curve.COLORS[1]

    def is_color(row, col, color):
        return np.allclose(image[row, col], color, atol=1e-6)

    # each point's marker: PGD's accuracy 1.0 at the top left, AutoAttack's 0.0 at the bottom left, then swapped
    assert is_color(top, left + 1, pgd_color) and is_color(bottom, left + 1, aa_color)
    assert is_color(bottom, right - 1, pgd_color) and is_color(top, right - 1, aa_color)
    middle = (top + bottom) // 2
    assert is_color(middle, (left + right) // 2, pgd_color) or is_color(middle, (left + right) // 2, aa_color)
    assert is_color(middle, left + 30, figures.GREY)  # clean 0.5: the grey line half way up
    # the legend says how many images each attack ran on: AutoAttack may run on fewer than PGD
    counted = security_curve.figure({**curve, "num_examples": 1000, "autoattack_examples": 100}, title="T")
    legend = slice(top - 26, top - 18)
    assert not np.array_equal(counted[legend], image[legend]) and np.array_equal(counted[top:], image[top:])


def test_tool_records_the_curve_and_writes_its_figure(tiny_zoo, tmp_path, idx_dir):
    zoo_dir, _ = tiny_zoo
    args = ["--zoo_name=tiny", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}", "--eps=0.02,0.3",
            "--num_examples=16", "--autoattack_examples=0", "--pgd_steps=3", "--record"]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "security_curve.py"), *args,
                           f"--figure={tmp_path / 'curve.png'}"], env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "eps 0.02: PGD-3x2" in proc.stdout and "eps 0.3: PGD-3x2" in proc.stdout
    recorded = zoo.entry("tiny", zoo_dir)["metrics"]["security_curve_linf"]
    assert recorded["eps"] == [0.02, 0.3] and recorded["split"] == "test[:16]" and "autoattack" not in recorded
    assert recorded["command"] == "python tools/security_curve.py " + " ".join(args)
    assert zoo.other_tools_commands("tiny", zoo_dir) == [recorded["command"]]  # a rebuild reruns it
    assert zoo.verify("tiny", zoo_dir)  # the artifact and its checksum are untouched
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "curve.png"))).numpy()
    assert png.shape == (300, 480, 3)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "security_curve.py"), "--zoo_name=tiny",
                           f"--zoo_dir={zoo_dir}", "--eps=0.3,0.1"], env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode != 0 and "two or more distinct budgets in increasing order" in proc.stderr
    assert "Traceback" not in proc.stderr
