"""Zoo entries as Keras models (tfadv.presets): every entry, fine-tuning, further generator training, ART, presets."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_idx_dataset, require_art
from tfadv import data, presets, zoo
from tfadv.errors import ZooError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = os.path.join(ROOT, "zoo")
REGISTRY = zoo.read_registry(ZOO)
ARTIFACTS = sorted(n for n, e in REGISTRY.items() if e.get("path"))


def images(name, n=6, seed=7):
    """A batch unlike load_keras's own probe: other values, other size."""
    return tf.random.stateless_uniform([n, *REGISTRY[name]["input_shape"]], seed=[seed, 3])


@pytest.mark.parametrize("name", ARTIFACTS)
def test_every_zoo_entry_loads_as_a_trainable_keras_model_with_its_savedmodels_outputs(name):
    model = presets.load_keras(name, ZOO)
    assert isinstance(model, keras.Model) and model.trainable_weights
    served = zoo.load(name, ZOO)
    x = images(name)
    if REGISTRY[name]["kind"] == "style":  # (content, style)
        np.testing.assert_allclose(model({"content": x, "style": x[::-1]}, training=False), served.serve(x, x[::-1]),
                                   atol=1e-4)
    else:
        np.testing.assert_allclose(model(x, training=False), served.serve(x), atol=1e-4)


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return make_idx_dataset(tmp_path_factory.mktemp("idx"), n_train=128, n_test=32)


def test_a_zoo_classifier_fine_tunes_for_an_epoch_and_the_zoo_is_untouched(idx_dir):
    model = presets.load_keras("fashion_mnist_small_cnn", ZOO)
    before = [w.numpy().copy() for w in model.trainable_weights]
    train, _ = data.load("fashion_mnist", "train", batch_size=32, source="idx", idx_dir=idx_dir, shuffle=True)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    assert zoo.verify("fashion_mnist_small_cnn", ZOO)  # the SavedModel and its checksum are as they were


def test_a_zoo_generator_keeps_training_within_its_budget(idx_dir):
    from tfadv.budgets import per_example_norm
    from tfadv.trainers import PerturbationTrainer

    attacker = presets.load_keras("fashion_mnist_unet_l2", ZOO)
    target = zoo.keras_layer("fashion_mnist_small_cnn", ZOO)
    trainer = PerturbationTrainer(attacker, target)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    train, _ = data.load("fashion_mnist", "train", batch_size=32, source="idx", idx_dir=idx_dir)
    before = [w.numpy().copy() for w in attacker.trainable_weights]
    trainer.fit(train, epochs=1, verbose=0)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, attacker.trainable_weights))
    x, _ = next(iter(train))
    x_hat = attacker(x, training=False)
    assert float(tf.reduce_max(per_example_norm(x_hat - x, "l2"))) <= 2.4 + 1e-4
    assert 0.0 <= float(tf.reduce_min(x_hat)) and float(tf.reduce_max(x_hat)) <= 1.0


def test_arts_tensorflow_estimator_runs_a_zoo_classifier_loaded_this_way():
    require_art()
    from art.estimators.classification import TensorFlowV2Classifier

    name = "fashion_mnist_pgd_defense_linf"
    model = presets.load_keras(name, ZOO)
    estimator = TensorFlowV2Classifier(model, nb_classes=10, input_shape=(28, 28, 1), clip_values=(0.0, 1.0),
                                       loss_object=keras.losses.CategoricalCrossentropy(from_logits=True))
    x = images(name).numpy()
    np.testing.assert_allclose(estimator.predict(x), zoo.load(name, ZOO).serve(x), atol=1e-4)
    gradients = estimator.loss_gradient(x, np.eye(10, dtype="float32")[np.arange(len(x)) % 10])
    assert gradients.shape == x.shape and np.abs(gradients).sum() > 0


def test_a_preset_folder_round_trips_and_carries_a_model_card(tmp_path):
    name = "fashion_mnist_pgd_defense_linf"
    folder = presets.save_preset(name, str(tmp_path / "preset"), ZOO)
    assert sorted(os.listdir(folder)) == ["MODEL_CARD.md", "metadata.json", "model.keras"]
    metadata = json.loads((tmp_path / "preset" / "metadata.json").read_text())
    assert metadata["from_savedmodel_sha256"] == REGISTRY[name]["sha256"] and metadata["entry"] == REGISTRY[name]
    model = presets.from_preset(folder)
    x = images(name)
    np.testing.assert_allclose(model(x, training=False), zoo.load(name, ZOO).serve(x), atol=1e-4)
    card = (tmp_path / "preset" / "MODEL_CARD.md").read_text()
    table = REGISTRY[name]["metrics"]["robustness_linf_0.1"]
    assert card.startswith(f"# {name}\n") and "## Limitations" in card
    assert f"| autoattack | {table['autoattack']['robust_accuracy']} | `{table['autoattack']['command']}` |" in card
    assert f"| accuracy | {REGISTRY[name]['metrics']['accuracy']} |" in card


def test_an_entry_whose_config_does_not_build_its_savedmodel_is_refused(tmp_path):
    """A registry entry edited to another architecture must not load as a silently different model."""
    zoo_dir = tmp_path / "zoo"
    zoo_dir.mkdir()
    shutil.copytree(os.path.join(ZOO, "fashion_mnist_small_cnn"), zoo_dir / "fashion_mnist_small_cnn")
    entry = json.loads(json.dumps(REGISTRY["fashion_mnist_small_cnn"]))
    entry["config"]["model_kwargs"] = {**entry["config"].get("model_kwargs", {}), "filters": [8, 16]}
    (zoo_dir / "registry.json").write_text(json.dumps({"fashion_mnist_small_cnn": entry}))
    with pytest.raises(ZooError, match="do not match the .* of the network its config builds"):
        presets.load_keras("fashion_mnist_small_cnn", str(zoo_dir))
