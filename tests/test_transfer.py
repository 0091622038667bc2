"""Transfer attacks: ensemble targets, CDA's and LTP's losses, the transfer trainer, the transfer table, the
black-box wrapper and tfadv-transfer (small synthetic models; the tool on a slice of the real test split)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv.autoattack.square import query_curve, square
from tfadv.budgets import per_example_norm
from tfadv.errors import ConfigError
from tfadv.losses import adversarial_loss
from tfadv.models import build_classifier, perturbation_model, unet
from tfadv.targets import Ensemble, load_target, target_sha256
from tfadv.tasks.keras_form import layer_tap, surrogate_taps
from tfadv.trainers.transfer import TransferPerturbationTrainer
from tfadv.transfer import TransferAttack, black_box, check_target, transfer_table
from tfadv.transfer_attacks import input_diversity

from conftest import brightness_task, require_fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def accuracy(model, x, y):
    return float(np.mean(np.argmax(np.asarray(model(x)), -1) == y))


@pytest.fixture(scope="module")
def data():
    return brightness_task(256, seed=3)


def _fit(model, x, y, epochs=6):
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.repeat(x, 4, 0), np.repeat(y, 4, 0), batch_size=64, epochs=epochs, verbose=0)
    return model


@pytest.fixture(scope="module")
def models(data, tmp_path_factory):
    """Two classifiers of the brightness task saved as .keras files: a CNN (the surrogate) and an MLP (unseen)."""
    keras.utils.set_random_seed(0)
    x, y = data
    folder = tmp_path_factory.mktemp("transfer_models")
    cnn = _fit(build_classifier("small_cnn", filters=[8, 16]), x, y)
    mlp = _fit(build_classifier("mlp", units=[32], dropout=0.0), x, y, epochs=10)
    paths = {"cnn": str(folder / "cnn.keras"), "mlp": str(folder / "mlp.keras")}
    cnn.save(paths["cnn"])
    mlp.save(paths["mlp"])
    return paths


def test_an_ensemble_target_is_the_mean_of_its_members_logits(data, models):
    x, _ = data
    ensemble = load_target(f"{models['cnn']}+{models['mlp']}")
    assert isinstance(ensemble, Ensemble) and len(ensemble.members) == 2
    members = [load_target(models["cnn"]), load_target(models["mlp"])]
    expected = (np.asarray(members[0](x[:8])) + np.asarray(members[1](x[:8]))) / 2
    np.testing.assert_allclose(np.asarray(ensemble(x[:8])), expected, atol=1e-5)
    with pytest.raises(ConfigError, match="one is empty"):
        load_target(models["cnn"] + "+")
    with pytest.raises(ConfigError, match="must be zoo entries"):  # an export could not verify the files later
        target_sha256(f"{models['cnn']}+{models['mlp']}")


def test_relativistic_cross_entropy_is_cdas_loss():
    clean = tf.constant([[4.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    adversarial = tf.constant([[1.0, 3.0, 0.0], [0.0, 2.5, 1.0]])
    loss = adversarial_loss("relativistic_ce", adversarial, tf.constant([0, 1]), clean_logits=clean)
    relative = np.asarray(adversarial - clean)
    ce = [np.log(np.exp(r).sum()) - r[k] for r, k in zip(relative, [0, 1])]  # CE towards the clean prediction
    np.testing.assert_allclose(np.asarray(loss), -np.array(ce), rtol=1e-6)
    # Moving away from the clean prediction lowers it; moving towards it raises it.
    assert float(loss[0]) < float(adversarial_loss("relativistic_ce", clean, tf.constant([0, 1]),
                                                   clean_logits=clean)[0])


def test_input_diversity_is_seeded_keeps_the_shape_and_prob_zero_is_the_identity(data):
    x = tf.constant(data[0][:4])
    a = input_diversity(x, tf.constant([0, 1]), 1.0)
    assert a.shape == x.shape
    np.testing.assert_array_equal(a, input_diversity(x, tf.constant([0, 1]), 1.0))
    draws = [input_diversity(x, tf.constant([0, k]), 1.0) for k in range(2, 6)]
    assert any(not np.array_equal(a, d) for d in draws)
    np.testing.assert_array_equal(input_diversity(x, tf.constant([0, 1]), 0.0), x)


def test_a_layer_inside_the_flip_wrapper_is_tapped_and_a_missing_one_is_named(data, models):
    from tfadv.models import flip_average

    inner = keras.saving.load_model(models["cnn"])
    wrapped = flip_average(inner)
    tap = layer_tap(wrapped, "stage1_0_relu")
    assert tap(data[0][:2]).shape == (2, 14, 14, 16)
    with pytest.raises(ConfigError, match="has no layer 'nope'.*stage1_0_relu"):
        layer_tap(wrapped, "nope")


@pytest.mark.parametrize("loss", ["feature_separation", pytest.param("relativistic_ce", marks=pytest.mark.slow)])
def test_a_transfer_generator_fools_a_model_it_never_saw_within_the_budget(data, models, loss):
    """LTP's and CDA's losses with input diversity, trained on the CNN only: the unseen MLP loses accuracy too."""
    keras.utils.set_random_seed(1)
    x, y = data
    if loss == "feature_separation":
        classifier, taps = surrogate_taps(models["cnn"], ["stage1_0_relu"])
    else:
        classifier, taps = load_target(models["cnn"]), None
    attacker = perturbation_model(unet(filters=8), "thresholded", "linf", 0.15)
    trainer = TransferPerturbationTrainer(attacker, classifier, taps=taps, input_diversity=0.5, loss=loss)
    trainer(x[:1])
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = trainer.fit(x, y, batch_size=32, epochs=3, verbose=0)
    x_hat = trainer(x)
    assert float(tf.reduce_max(per_example_norm(x_hat - x, "linf"))) <= 0.15
    assert float(tf.reduce_min(x_hat)) >= 0 and float(tf.reduce_max(x_hat)) <= 1
    unseen = load_target(models["mlp"])
    assert accuracy(unseen, x_hat, y) < accuracy(unseen, x, y) - 0.3, history.history["loss"]
    assert np.isfinite(history.history["loss"]).all()
    config = trainer.get_config()
    assert config["loss"] == loss and config["input_diversity"] == 0.5


def test_transfer_trainer_refuses_what_it_cannot_train(models):
    attacker = perturbation_model(unet(filters=8), "thresholded", "linf", 0.1)
    with pytest.raises(ConfigError, match="needs taps"):
        TransferPerturbationTrainer(attacker, load_target(models["cnn"]), loss="feature_separation")
    with pytest.raises(ConfigError, match="input_diversity"):
        TransferPerturbationTrainer(attacker, load_target(models["cnn"]), input_diversity=1.5)


def _brightness_votes(offset):
    """A hand-made classifier: class = brightness bucket (mean * 10 + offset), logits one-hot."""
    def classify(images):
        mean = tf.reduce_mean(tf.convert_to_tensor(images, tf.float32), [1, 2, 3])
        k = tf.clip_by_value(tf.cast(tf.floor(mean * 10.0 + offset), tf.int32), 0, 9)
        return tf.one_hot(k, 10) * 5.0
    return classify


def test_the_transfer_table_counts_fooling_on_unseen_targets_only_and_checks_the_budget():
    rng = np.random.default_rng(0)
    x = np.clip(rng.uniform(0.1, 0.8, (40, 6, 6, 1)).round(1) + 0.05, 0, 1).astype(np.float32)
    x[:] = x.mean(axis=(1, 2, 3), keepdims=True)  # flat images: the bucket is the pixel value
    labels = np.floor(x[:, 0, 0, 0] * 10).astype(np.int64)
    targets = {"a": _brightness_votes(0.0), "b": _brightness_votes(0.0), "shifted": _brightness_votes(0.5),
               "robust": _brightness_votes(0.0)}
    brighten = TransferAttack(lambda x, y: np.clip(x + 0.1, 0, 1), ["a"])
    nothing = TransferAttack(lambda x, y: x, [])
    table = transfer_table({"brighten": brighten, "nothing": nothing}, targets, x, labels, norm="linf", eps=0.1,
                           defended={"robust"})
    rows = {r["attack"]: r for r in table["rows"]}
    assert table["clean_accuracy"]["a"] == 1.0 and table["clean_accuracy"]["shifted"] < 1.0
    assert rows["brighten"]["fooling_rate"]["b"] == 1.0  # every image moves up a bucket
    assert rows["brighten"]["unseen_targets"] == ["b", "shifted"]  # not its surrogate a, not the defended
    right = np.floor(x[:, 0, 0, 0] * 10 + 0.5).astype(int) == labels
    moved = np.floor(np.clip(x[:, 0, 0, 0] + 0.1, 0, 1) * 10 + 0.5).astype(int) != labels
    expected_shifted = float(np.mean(moved[right]))
    assert rows["brighten"]["fooling_rate"]["shifted"] == pytest.approx(expected_shifted)
    assert rows["brighten"]["unseen_mean"] == pytest.approx((1.0 + expected_shifted) / 2)
    assert rows["brighten"]["defended_mean"] == 1.0
    assert rows["nothing"]["unseen_mean"] == 0.0
    too_far = TransferAttack(lambda x, y: np.clip(x + 0.2, 0, 1), [])
    with pytest.raises(AssertionError, match="breaks its budget"):
        transfer_table({"too_far": too_far}, targets, x, labels, norm="linf", eps=0.1)


def test_a_target_of_the_wrong_shape_or_class_count_gets_one_line(data, models):
    x, _ = data
    five_classes = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
    with pytest.raises(ConfigError, match="returns scores of shape \\(5,\\) per image; the data has 10"):
        check_target("five", five_classes, x, 10)
    colour = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ConfigError, match="cannot classify images of shape \\(28, 28, 1\\)") as error:
        check_target("colour", colour, x, 10)
    assert "\n" not in str(error.value)


def test_square_queries_a_black_box_function_and_a_fooling_prior_costs_one_query(data, models):
    x, y = data
    hidden = load_target(models["mlp"])
    calls = []

    def scores(images):  # numpy in, numpy out: all the attack may see
        calls.append(len(images))
        return np.asarray(hidden(images))

    model = black_box(scores, num_classes=10)
    right = np.argmax(scores(x[:64]), -1) == y[:64]
    x_adv, queries = square(model, x[:64], y[:64], norm="linf", eps=0.15, n_queries=30, return_queries=True)
    assert sum(calls) > 64 and ((queries == 0) == ~right).all()
    fooled = queries > 0
    _, again = square(model, x[:64], y[:64], norm="linf", eps=0.15, n_queries=30, x_init=np.asarray(x_adv),
                      return_queries=True)
    assert (again[fooled] == 1).all()
    assert query_curve(again, (1,))["success_at"][1] == pytest.approx(fooled.sum() / right.sum())
    with pytest.raises(ConfigError, match="num_classes"):
        black_box(scores, num_classes=1)


def test_tfadv_transfer_writes_the_table_report_and_heatmap(tmp_path):
    require_fashion_mnist()
    out = tmp_path / "report"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CI": "true"}
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "transfer.py"), "--generators=fashion_mnist_universal_linf",
         "--targets=fashion_mnist_small_cnn,fashion_mnist_cnn_gap", "--defended=fashion_mnist_pgd_defense_linf",
         "--baselines=mi_fgsm", "--split=test[:100]", f"--output_dir={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = json.load(open(out / "transfer.json"))
    rows = {r["attack"]: r for r in table["rows"]}
    assert set(rows) == {"fashion_mnist_universal_linf", "MI-FGSM-10"}
    for row in rows.values():  # both made on small_cnn: it is white-box there, never in the transfer mean
        assert row["surrogates"] == ["fashion_mnist_small_cnn"] and row["unseen_targets"] == ["fashion_mnist_cnn_gap"]
        assert row["unseen_mean"] == row["fooling_rate"]["fashion_mnist_cnn_gap"]
    assert rows["MI-FGSM-10"]["fooling_rate"]["fashion_mnist_small_cnn"] > 0.75  # white-box: it works (0.89)
    report = open(out / "report.md").read()
    assert "## Fooling rate at linf 0.1 (100 images of test[:100])" in report and "(surrogate)" in report
    from PIL import Image

    assert Image.open(out / "transfer_heatmap.png").size[0] > 100
