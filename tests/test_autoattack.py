"""tfadv.autoattack (native TensorFlow) and tools/autoattack.py: the standard version's stages and settings, every
returned image inside the budget, APGD held against ART's, recording into a tmp zoo."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import brightness_classifier, brightness_task, require_art
from tfadv import autoattack, defense_report, entry_report, zoo
from tfadv.autoattack import apgd
from tfadv.budgets import perturbation_norms
from tfadv.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# every stage runs, in seconds: the custom version with short stages
QUICK = dict(version="custom", apgd_iter=10, targets=2, fab_iter=10, square_queries=20, batch_size=64)
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1"}


@pytest.fixture(scope="module")
def model():
    return brightness_classifier()


def test_standard_is_the_reference_standard_version():
    """fra31/auto-attack set_version('standard'): APGD-CE (1 restart), APGD-T and FAB-T (9 targets), 100
    iterations each, Square 5000 queries with p_init 0.8; overriding any of it needs version='custom'."""
    standard = autoattack.resolve("standard")
    assert standard["stages"] == ("apgd-ce", "apgd-t", "fab-t", "square")
    assert (standard["apgd_iter"], standard["apgd_restarts"], standard["targets"], standard["fab_iter"],
            standard["square_queries"], standard["square_p_init"]) == (100, 1, 9, 100, 5000, 0.8)
    assert autoattack.resolve("standard", targets=9, stages=list(standard["stages"])) == standard
    with pytest.raises(ConfigError, match="version='standard' fixes its settings; targets differ"):
        autoattack.resolve("standard", targets=3)
    with pytest.raises(ConfigError, match="Unknown AutoAttack stage 'fab'"):
        autoattack.resolve("custom", stages=["apgd-ce", "fab"])
    with pytest.raises(ConfigError, match="Unknown AutoAttack version 'plus'"):
        autoattack.resolve("plus")
    assert autoattack.resolve("custom", targets=3)["targets"] == 3


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.5)])
def test_stages_lower_accuracy_and_keep_every_image_in_the_budget(tiny_zoo, norm, eps):
    zoo_dir, name = tiny_zoo
    loaded = tf.saved_model.load(zoo.path_of(name, zoo_dir))  # kept: a bare .serve loses its variables
    images, labels = brightness_task(48, seed=1)
    result = autoattack.evaluate(loaded.serve, images, labels, norm=norm, eps=eps, **QUICK)
    assert result["clean_accuracy"] >= 0.8  # the tiny model learned the task, so there is something to attack
    assert result["robust_accuracy"] < result["clean_accuracy"] - 0.3
    figures = [s["robust_accuracy"] for s in result["stages"]]
    assert [s["stage"] for s in result["stages"]] == ["clean", "apgd-ce", "apgd-t", "fab-t", "square"]
    assert figures == sorted(figures, reverse=True) and figures[-1] == result["robust_accuracy"]
    adversarial = result["adversarial"]
    assert adversarial.dtype == np.float32 and adversarial.shape == images.shape
    assert np.all(perturbation_norms(images, adversarial, norm) <= eps)  # float64
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    predicted = np.argmax(loaded.serve(tf.constant(adversarial)).numpy(), axis=1)
    np.testing.assert_array_equal(predicted == labels, result["robust"])  # the figure is these images' accuracy
    settings = result["settings"]
    assert settings["version"] == "custom" and settings["implementation"] == autoattack.IMPLEMENTATION


@pytest.mark.parametrize("stage", ["apgd-t", "fab-t", "square"])
def test_each_stage_alone_breaks_images_within_the_budget_on_saturated_inputs(model, stage):
    """Adversarial inputs: black and white pixels, where clipping and the ball meet."""
    images, labels = brightness_task(32, seed=2)
    images[:8] = 0.0
    images[8:16] = 1.0
    labels[:8] = np.argmax(model(images[:8]).numpy(), 1)
    labels[8:16] = np.argmax(model(images[8:16]).numpy(), 1)
    for norm, eps in (("linf", 0.05), ("l2", 2.0)):
        result = autoattack.evaluate(model, images, labels, norm=norm, eps=eps, version="custom", stages=[stage],
                                     apgd_iter=20, targets=3, fab_iter=20, square_queries=200)
        adversarial = result["adversarial"]
        assert np.all(perturbation_norms(images, adversarial, norm) <= eps)
        assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
        assert result["robust_accuracy"] < result["clean_accuracy"], (stage, norm)


def test_float16_logits_are_attacked_in_float32(model):
    """A mixed_float16 classifier returns float16 logits: every stage casts them and keeps the budget."""
    images, labels = brightness_task(32, seed=3)
    half = tf.function(lambda x: tf.cast(model(x), tf.float16))
    result = autoattack.evaluate(half, images, labels, norm="linf", eps=0.05, **QUICK)
    assert result["robust_accuracy"] < result["clean_accuracy"]
    assert np.all(perturbation_norms(images, result["adversarial"], "linf") <= 0.05)


@pytest.mark.parametrize("norm,eps", [("linf", 0.03), ("l2", 0.6)])
def test_apgd_agrees_with_arts_apgd(model, norm, eps):
    """Same budget, step 2 eps, 100 iterations, one random start: robust accuracy within 4 points of ART's
    (the random streams differ; on this task both land on the same figure, measured 0 points apart)."""
    require_art()
    from art.attacks.evasion import AutoProjectedGradientDescent

    from tfadv.autoattack import art

    images, labels = brightness_task(256, seed=1)
    classifier = art.art_classifier(model, (28, 28, 1))

    def accuracy(adversarial):
        adversarial = autoattack.into_budget(images, adversarial, norm, eps)
        return np.mean(np.argmax(model(adversarial).numpy(), 1) == labels)

    theirs = AutoProjectedGradientDescent(classifier, norm=np.inf if norm == "linf" else 2, eps=eps,
                                          eps_step=2 * eps, max_iter=100, nb_random_init=1, batch_size=256,
                                          loss_type="cross_entropy", verbose=False).generate(images, np.eye(10)[labels])
    ours = accuracy(np.asarray(apgd.apgd(model, images, labels, norm=norm, eps=eps)))
    clean = np.mean(np.argmax(model(images).numpy(), 1) == labels)
    assert ours < clean - 0.1  # the budget matters here, so agreement means something
    assert abs(ours - accuracy(theirs)) <= 0.04
    targeted = accuracy(np.asarray(apgd.apgd_targeted(model, images, labels, norm=norm, eps=eps,
                                                      n_target_classes=3)))
    assert abs(targeted - accuracy(theirs)) <= 0.04


def test_apgd_targeted_loss_is_croce_and_heins_targeted_dlr():
    logits = tf.constant([[5.0, 3.0, 1.0, 0.0, -1.0], [0.0, 4.0, 2.0, 1.0, 3.0]])
    labels, targets = tf.constant([0, 1]), tf.constant([1, 4])
    values = apgd.per_example_loss("dlr-targeted", logits, labels, targets).numpy()
    # -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)
    np.testing.assert_allclose(values, [-(5 - 3) / (5 - (1 + 0) / 2), -(4 - 3) / (4 - (2 + 1) / 2)], rtol=1e-6)


def test_bad_input_is_refused_before_attacking():
    images, labels = brightness_task(4)
    with pytest.raises(ConfigError, match="Unknown norm 'l1'"):
        autoattack.evaluate(lambda x: x, images, labels, norm="l1")
    with pytest.raises(ConfigError, match="eps must be a positive finite number"):
        autoattack.evaluate(lambda x: x, images, labels, eps=float("nan"))
    with pytest.raises(ConfigError, match="one label each"):
        autoattack.evaluate(lambda x: x, images, labels[:3])
    with pytest.raises(ConfigError, match="returns probabilities"):
        autoattack.check_logits(lambda x: tf.nn.softmax(tf.reshape(x, (-1, 784))[:, :10]), images, "soft")


def _tool(*args, timeout=600):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "autoattack.py"), *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout)
    return proc, (json.loads(proc.stdout[proc.stdout.index("{"):]) if proc.returncode == 0 else None)


def test_record_adds_the_standard_column_and_leaves_the_artifact(tiny_zoo, idx_dir):
    """The standard version in full through the tool (the tiny model falls to APGD-CE, so it is quick)."""
    zoo_dir, name = tiny_zoo
    before = zoo.read_registry(zoo_dir)[name]
    proc, printed = _tool(f"--zoo_name={name}", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}", "--norm=linf",
                          "--eps=0.1", "--num_examples=32", "--record")
    assert proc.returncode == 0, proc.stderr
    assert "after apgd-ce:" in proc.stdout and "after square:" in proc.stdout
    after = zoo.read_registry(zoo_dir)[name]
    table = after["metrics"]["robustness_linf_0.1"]
    column = table.pop("autoattack")
    assert table == before["metrics"]["robustness_linf_0.1"]  # the PGD columns beside it are kept
    assert {k: v for k, v in after.items() if k != "metrics"} == {k: v for k, v in before.items() if k != "metrics"}
    assert after["sha256"] == before["sha256"] == zoo.tree_sha256(zoo.path_of(name, zoo_dir))
    assert column["num_examples"] == 32 and column["split"] == "test[:32]"
    assert column["settings"]["version"] == "standard" and column["settings"]["targets"] == 9
    assert column["settings"]["square_queries"] == 5000 and column["settings"]["stages"] == list(autoattack.STAGES)
    assert column["robust_accuracy"] < column["clean_accuracy"]
    assert column["command"].startswith("python tools/autoattack.py --zoo_name=tiny")
    assert printed["robust_accuracy"] == column["robust_accuracy"]
    shown = defense_report.recorded_robustness(zoo.entry(name, zoo_dir))  # what tfadv-evaluate prints
    assert f"| autoattack | {column['robust_accuracy']:.4f} | AutoAttack standard (apgd-ce, apgd-t, fab-t, square)" \
        in shown and "| pgd100x2 | 0.5000 | PGD-100, 2 random restarts |" in shown
    evaluated = entry_report.evaluate(zoo_name=name, zoo_dir=zoo_dir, split="test[:32]", source="idx", idx_dir=idx_dir)
    assert evaluated.recorded == shown and evaluated.report is None  # tfadv-evaluate prints it to stderr
    assert evaluated.metrics["zoo_name"] == name and evaluated.metrics["num_examples"] == 32


def test_the_tool_names_custom_runs_and_refuses_unclear_requests(tiny_zoo, idx_dir):
    zoo_dir, name = tiny_zoo
    proc, _ = _tool(f"--zoo_name={name}", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}", "--targets=3",
                    "--num_examples=8")
    assert proc.returncode != 0 and "version='standard' fixes its settings; targets differ" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc, printed = _tool(f"--classifier={os.path.join(zoo_dir, name)}", f"--idx_dir={idx_dir}", "--version=custom",
                          "--stages=apgd-ce", "--apgd_iter=5", "--num_examples=16")
    assert proc.returncode == 0, proc.stderr
    assert printed["settings"]["version"] == "custom" and printed["settings"]["stages"] == ["apgd-ce"]
    assert printed["classifier"].endswith(name) and printed["split"] == "test[:16]"
    proc, _ = _tool(f"--classifier={name}", f"--zoo_dir={zoo_dir}", "--record")
    assert proc.returncode != 0 and "--record writes into a zoo entry: pass --zoo_name." in proc.stderr


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.5)])
def test_into_budget_projects_clips_and_drops_nan_pixels(norm, eps):
    rng = np.random.default_rng(0)
    x = rng.random((8, 28, 28, 1)).astype("float32")
    adv = (x + rng.normal(0, 0.3, x.shape)).astype("float32")  # far outside both the ball and [0, 1]
    adv[0, 3, 3, 0] = np.nan
    out = autoattack.into_budget(x, adv, norm, eps)
    assert np.all(perturbation_norms(x, out, norm) <= eps) and out.min() >= 0 and out.max() <= 1
    assert out[0, 3, 3, 0] == x[0, 3, 3, 0] and np.isfinite(out).all()
    inside = autoattack.into_budget(x, out, norm, eps)
    np.testing.assert_allclose(inside, out, atol=eps * 2e-5)  # already inside: (almost) unchanged


@pytest.mark.slow  # a benchmark's smoke run, like the other benchmarks' (BUILD.md, Tests)
def test_speed_benchmark_runs_native_and_art_rows_on_the_same_images(tiny_zoo, idx_dir):
    require_art()
    zoo_dir, name = tiny_zoo
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "benchmark_autoattack.py"),
                           f"--zoo_name={name}", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}", "--num_examples=16",
                           "--rows=native:apgd-ce,art:apgd-ce,native-standard"], env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "| native:apgd-ce |" in proc.stdout and "| art:apgd-ce |" in proc.stdout
    rows = json.loads(proc.stdout[proc.stdout.index("{"):])["rows"]
    assert [r["row"] for r in rows] == ["native:apgd-ce", "art:apgd-ce", "native-standard"]
    assert rows[0]["settings"]["implementation"] == autoattack.IMPLEMENTATION
    assert rows[1]["settings"]["library"].startswith("adversarial-robustness-toolbox==")
    assert rows[2]["settings"]["version"] == "standard"
    assert all(r["robust_accuracy"] < r["stages"][0]["robust_accuracy"] for r in rows)


def test_the_speed_benchmarks_floor_counts_the_classifier_passes_each_stage_makes():
    """benchmark_autoattack's floor (classifier_calls) against passes counted inside the compiled stages: a
    classifier whose logits ignore the image fools nothing, so every iteration, target and query runs on every image
    a stage attacks. Input gradients are counted exactly (a counting identity's backward); the other forwards are
    the stages' passes plus one-forward checks (clean, keep-the-successes, final, a stage's start), at most
    (3 + targets) per image."""
    from tfadv.benchmarks.autoattack import classifier_calls

    forwards, gradients = tf.Variable(0, dtype=tf.int64), tf.Variable(0, dtype=tf.int64)

    @tf.custom_gradient
    def counted(x):
        def backward(dy):
            gradients.assign_add(tf.cast(tf.shape(dy)[0], tf.int64))
            return dy
        return tf.identity(x), backward

    def classifier(x):
        forwards.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        pixels = tf.reduce_sum(counted(x), [1, 2, 3])[:, None]
        return tf.constant([[3.0] + [0.0] * 9]) + 0.0 * pixels  # always class 0

    x = np.random.default_rng(0).uniform(size=(12, 8, 8, 1)).astype("float32")
    y = np.array([0] * 7 + [1] * 5)  # 7 attacked by every stage, none fooled
    for stage in autoattack.STAGES:
        forwards.assign(0), gradients.assign(0)
        settings = dict(stages=[stage], apgd_iter=5, targets=3, fab_iter=4, square_queries=20)
        result = autoattack.evaluate(classifier, x, y, norm="linf", eps=0.1, version="custom", **settings)
        assert result["robust_accuracy"] == 7 / 12
        calls = classifier_calls(result["stages"], {**autoattack.STANDARD, **settings}, len(y), num_classes=10)
        assert int(gradients.numpy()) == calls["gradients"], stage
        checks = int(forwards.numpy()) - calls["gradients"] - calls["forwards"]
        assert 0 <= checks <= (3 + settings["targets"]) * len(y), (stage, checks)
    assert calls == {"gradients": 0, "forwards": 7 * 21}  # Square: its start, then one pass per query
