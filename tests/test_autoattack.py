"""AutoAttack from ART (tfadv.autoattack, tools/autoattack.py) on a tiny classifier exported into a tmp zoo."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("art", reason="AutoAttack needs the eval extra: pip install 'tfadv[eval]'")

import tensorflow as tf  # noqa: E402

from conftest import brightness_classifier, brightness_task  # noqa: E402
from tfadv import autoattack, export, zoo  # noqa: E402
from tfadv.errors import ConfigError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = dict(apgd_iter=10, targets=2, square_queries=20, batch_size=64)  # seconds, yet every stage runs


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A zoo holding one classifier of the brightness task, trained in seconds; returns (zoo_dir, name)."""
    model = brightness_classifier()
    zoo_dir = str(tmp_path_factory.mktemp("zoo"))
    with zoo.staging("tiny", zoo_dir) as stage:
        export.write_classifier(stage.path, model)
        stage.commit(kind="defended_classifier", dataset="fashion_mnist", metrics={"accuracy": 0.9},
                     config={"model": "dense"})
    zoo.add_metrics("tiny", {"robustness_linf_0.1": {"clean": 0.9, "pgd100x2": 0.5, "settings": {"norm": "linf"}}},
                    zoo_dir)
    return zoo_dir, "tiny"


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.5)])
def test_stages_lower_accuracy_and_keep_every_image_in_the_budget(tiny_zoo, norm, eps):
    zoo_dir, name = tiny_zoo
    loaded = tf.saved_model.load(zoo.path_of(name, zoo_dir))  # kept: a bare .serve loses its variables
    serve = loaded.serve
    images, labels = brightness_task(48, seed=1)
    result = autoattack.evaluate(serve, images, labels, norm=norm, eps=eps, **QUICK)
    assert result["clean_accuracy"] >= 0.8  # the tiny model learned the task, so there is something to attack
    assert result["robust_accuracy"] < result["clean_accuracy"] - 0.3
    figures = [s["robust_accuracy"] for s in result["stages"]]
    assert [s["stage"] for s in result["stages"]] == ["clean", "apgd-ce", "apgd-t", "square"]
    assert figures == sorted(figures, reverse=True) and figures[-1] == result["robust_accuracy"]
    adversarial = result["adversarial"]
    assert adversarial.dtype == np.float32 and adversarial.shape == images.shape
    assert np.all(autoattack.perturbation_norms(images, adversarial, norm) <= eps)  # float64
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    predicted = np.argmax(serve(tf.constant(adversarial)).numpy(), axis=1)
    np.testing.assert_array_equal(predicted == labels, result["robust"])  # the figure is these images' accuracy
    assert result["robust_accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert result["settings"]["library"] == "adversarial-robustness-toolbox==1.20.1"


def test_batched_dlr_loss_equals_arts():
    from art.attacks.evasion import AutoProjectedGradientDescent

    classifier = autoattack.art_classifier(lambda x: tf.reshape(x, (-1, 784))[:, :10])
    arts = AutoProjectedGradientDescent(classifier, loss_type="difference_logits_ratio",
                                        verbose=False).estimator._loss_object
    rng = np.random.default_rng(0)
    one_hot = np.eye(10, dtype="float32")[rng.integers(0, 10, 64)]
    logits = (rng.normal(size=(64, 10)) + 4 * one_hot * (rng.random((64, 1)) < 0.5)).astype("float32")
    ours = autoattack.DifferenceLogitsRatio()
    for reduction in ("none", "mean", "sum"):
        arts.reduction = ours.reduction = reduction
        np.testing.assert_allclose(ours(one_hot, logits).numpy(), arts(tf.constant(one_hot), tf.constant(logits)),
                                   rtol=1e-5, atol=1e-6)


def test_bad_settings_are_refused_before_attacking():
    images, labels = brightness_task(4)
    with pytest.raises(ConfigError, match="Unknown AutoAttack stage 'fab-t'"):
        autoattack.evaluate(lambda x: x, images, labels, stages=["apgd-ce", "fab-t"])
    with pytest.raises(ConfigError, match="Unknown norm 'l1'"):
        autoattack.evaluate(lambda x: x, images, labels, norm="l1")


def test_record_adds_the_column_and_leaves_the_artifact(tiny_zoo, idx_dir):
    zoo_dir, name = tiny_zoo
    before = zoo.read_registry(zoo_dir)[name]
    args = [f"--zoo_name={name}", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}", "--norm=linf", "--eps=0.1",
            "--num_examples=32", "--apgd_iter=5", "--targets=1", "--square_queries=10", "--record"]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "autoattack.py"), *args],
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", "CI": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "after apgd-ce:" in proc.stdout and "after square:" in proc.stdout
    after = zoo.read_registry(zoo_dir)[name]
    table = after["metrics"]["robustness_linf_0.1"]
    column = table.pop("autoattack")
    assert table == before["metrics"]["robustness_linf_0.1"]  # the PGD columns beside it are kept
    assert {k: v for k, v in after.items() if k != "metrics"} == {k: v for k, v in before.items() if k != "metrics"}
    assert after["sha256"] == before["sha256"] == zoo.tree_sha256(zoo.path_of(name, zoo_dir))
    assert column["num_examples"] == 32 and column["split"] == "test[:32]"
    assert column["settings"]["targets"] == 1 and column["settings"]["square_queries"] == 10
    assert column["settings"]["library"] == "adversarial-robustness-toolbox==1.20.1"
    assert column["robust_accuracy"] < column["clean_accuracy"]
    assert column["command"].startswith("python tools/autoattack.py --zoo_name=tiny")
    printed = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert printed["robust_accuracy"] == column["robust_accuracy"]


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.5)])
def test_into_budget_projects_clips_and_drops_nan_pixels(norm, eps):
    rng = np.random.default_rng(0)
    x = rng.random((8, 28, 28, 1)).astype("float32")
    adv = (x + rng.normal(0, 0.3, x.shape)).astype("float32")  # far outside both the ball and [0, 1]
    adv[0, 3, 3, 0] = np.nan  # what ART's L2 Square proposed on the zoo models
    out = autoattack.into_budget(x, adv, norm, eps)
    assert np.all(autoattack.perturbation_norms(x, out, norm) <= eps) and out.min() >= 0 and out.max() <= 1
    assert out[0, 3, 3, 0] == x[0, 3, 3, 0] and np.isfinite(out).all()
    inside = autoattack.into_budget(x, out, norm, eps)
    np.testing.assert_allclose(inside, out, atol=eps * 2e-5)  # already inside: (almost) unchanged
