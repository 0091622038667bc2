"""The attack strength benchmark (tfadv.benchmarks.attack_strength, tools/benchmark_attack_strength.py) on a tiny
classifier: every row's figure is the accuracy on the images it returned, inside the budget; refinement from x_hat
never loses a generator's success; bad input fails clearly."""

import os
import subprocess
import sys

import numpy as np
import pytest

import tensorflow as tf

from conftest import brightness_classifier, brightness_task
from tfadv.benchmarks import attack_strength as bench
from tfadv.budgets import perturbation_norms
from tfadv.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

QUICK_AA = dict(version="custom", apgd_iter=5, targets=1, fab_iter=5, square_queries=5, batch_size=64)


@pytest.fixture(scope="module")
def tiny_classifier():
    """A dense classifier of the brightness task, trained in seconds (conftest.brightness_classifier)."""
    model = brightness_classifier()
    return tf.function(lambda x: model(x, training=False))


def _half_budget_generator(norm, eps):
    """A weak 'generator': darkens every image by half the budget (linf: eps/2 per pixel; l2: eps/2 overall)."""
    def generator(x):
        step = eps / 2 if norm == "linf" else eps / 2 / 28.0
        return tf.clip_by_value(x - step, 0.0, 1.0)
    return generator


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.5)])
def test_rows_equal_a_recomputation_and_refinement_keeps_every_success(tiny_classifier, norm, eps):
    images, labels = brightness_task(48, seed=1)
    generator = _half_budget_generator(norm, eps)
    rows = bench.benchmark(tiny_classifier, generator, images, labels, norm=norm, eps=eps, refine_steps=(1, 3),
                           pgd_steps=5, pgd_restarts=1, autoattack_examples=16, autoattack_settings=QUICK_AA,
                           batch_size=20, plain_pgd=True, log=lambda line: None)
    bench.compare(rows)
    assert [r["attack"] for r in rows] == ["generator", "generator+PGD-1", "generator+PGD-3", "PGD-1x1", "PGD-3x1",
                                           "PGD-5x1", "AutoAttack"]
    for row in rows:
        adversarial, n = row["adversarial"], row["num_examples"]
        assert np.all(perturbation_norms(images[:n], adversarial, norm) <= eps * (1 + 1e-5))
        predicted = np.argmax(tiny_classifier(tf.constant(adversarial)).numpy(), axis=1)
        assert row["adv_accuracy"] == pytest.approx(np.mean(predicted == labels[:n]))
        assert row["subset_accuracy"] == pytest.approx(np.mean(predicted[:16] == labels[:16]))
        assert row["vs_aa_subset_points"] == pytest.approx(100 * (row["subset_accuracy"] - rows[-1]["adv_accuracy"]))
        assert row["images_per_s"] == pytest.approx(n / row["seconds"], rel=1e-2)
    gen, refined = rows[0], rows[1:3]
    np.testing.assert_allclose(gen["adversarial"], generator(tf.constant(images)).numpy())  # x_hat, untouched
    for row in refined:
        assert not np.any(row["correct"] & ~gen["correct"])  # an image the generator fooled stays fooled
    assert refined[-1]["adv_accuracy"] < gen["adv_accuracy"] - 0.2  # three steps do break what x_hat did not


def test_out_of_budget_generator_and_bad_settings_are_refused(tiny_classifier):
    images, labels = brightness_task(8, seed=2)
    with pytest.raises(AssertionError, match="leave the budget"):
        bench.benchmark(tiny_classifier, lambda x: tf.clip_by_value(x + 0.2, 0.0, 1.0), images, labels,
                        norm="linf", eps=0.1, refine_steps=(), pgd_steps=1, pgd_restarts=1, log=lambda line: None)
    with pytest.raises(ConfigError, match="autoattack_examples"):
        bench.benchmark(tiny_classifier, tf.identity, images, labels, norm="linf", eps=0.1, autoattack_examples=9)
    with pytest.raises(ConfigError, match="refine_steps"):
        bench.benchmark(tiny_classifier, tf.identity, images, labels, norm="linf", eps=0.1, refine_steps=(0,))


def test_tool_reports_an_unknown_entry_on_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "TFADV_ZOO_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "benchmark_attack_strength.py"),
                           "--target=no_such_classifier", "--generator=no_such_generator"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "no_such_classifier" in errors[0]
