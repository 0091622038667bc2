import json
import os

import keras
import numpy as np
import pytest

from tfadv import config as config_lib
from tfadv import data, evaluation, experiments, schema, tasks, training
from tfadv.errors import ConfigError

from conftest import make_idx_dataset


def tiny_config(idx_dir, **overrides):
    cfg = experiments.get_experiment("fashion_mnist_cnn")
    return config_lib.override(cfg, {"data.idx_dir": idx_dir, "data.batch_size": 32, "epochs": 2,
                                     "model_kwargs": {"filters": [8, 16]}, "optimizer.learning_rate": 0.01,
                                     "optimizer.weight_decay": 0.0, "test_time_flip": False, **overrides})


def test_train_classifier_writes_a_complete_run_folder(idx_dir, tmp_path):
    workdir = str(tmp_path / "run")
    model, metrics = training.run_experiment(tiny_config(idx_dir), workdir, verbose=0)
    assert sorted(os.listdir(workdir)) == [".lock", "config.json", "images", "logs", "metrics.json", "model.keras"]
    assert experiments.load_json(os.path.join(workdir, "config.json")) == tiny_config(idx_dir)
    saved = json.load(open(os.path.join(workdir, "metrics.json")))
    assert saved == metrics and saved["num_examples"] == 48 and saved["data_source"] == f"idx:{idx_dir}"
    assert saved["epochs_run"] == 2
    # The test figure is measured once, at the end, on the test split; validation ran on held-out train data.
    assert (saved["split"], saved["validation_split"]) == ("test", "train[90%:]")
    assert "val_accuracy" in saved and "val_loss" in saved
    assert saved["accuracy"] == evaluation.evaluate_classifier(
        keras.saving.load_model(os.path.join(workdir, "model.keras")),
        data.load("fashion_mnist", "test", idx_dir=idx_dir)[0])["accuracy"]
    assert {"train", "validation", "images"} <= set(os.listdir(os.path.join(workdir, "logs")))
    assert "predictions_epoch002.png" in os.listdir(os.path.join(workdir, "images"))
    reloaded = keras.saving.load_model(os.path.join(workdir, "model.keras"))
    x = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(reloaded(x), model(x, training=False), rtol=1e-5, atol=1e-5)


def test_training_learns_the_synthetic_task(tmp_path):
    bigger = make_idx_dataset(tmp_path / "idx", n_train=640, n_test=96)
    cfg = tiny_config(bigger, epochs=6, **{"data.augment": False})
    _, metrics = training.run_experiment(cfg, str(tmp_path / "run"), verbose=0)
    assert metrics["accuracy"] > 0.5, metrics  # chance is 0.1


def test_steps_per_epoch_caps_each_epoch(idx_dir, tmp_path):
    cfg = tiny_config(idx_dir, steps_per_epoch=1, epochs=1)
    model, _ = training.run_experiment(cfg, str(tmp_path / "run"), verbose=0)
    assert int(model.optimizer.iterations) == 1


def test_test_time_flip_wraps_the_saved_model(idx_dir, tmp_path):
    workdir = str(tmp_path / "run")
    model, metrics = training.run_experiment(tiny_config(idx_dir, epochs=1, test_time_flip=True), workdir,
                                               verbose=0)
    reloaded = keras.saving.load_model(os.path.join(workdir, "model.keras"))
    assert "flip_average" in [layer.name for layer in reloaded.layers]
    x = np.random.default_rng(1).uniform(size=(3, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(reloaded(x), reloaded(x[:, :, ::-1]), atol=1e-5)


def test_validation_uses_held_out_training_images_and_never_the_test_split(idx_dir, tmp_path):
    """fit's validation data is train[90%:] (here 10 of 96 images), disjoint from the train[:90%] it trains on."""
    cfg = tiny_config(idx_dir, epochs=1)
    splits = tasks.labelled_data(cfg)
    count = lambda ds: sum(int(x.shape[0]) for x, _ in ds)  # noqa: E731
    assert (count(splits.train), count(splits.validation), count(splits.test)) == (86, 10, 48)
    train_images = np.concatenate([x.numpy() for x, _ in data.load("fashion_mnist", "train[:90%]",
                                                                     idx_dir=idx_dir)[0]])
    held_out = np.concatenate([x.numpy() for x, _ in splits.validation])
    assert not any(np.array_equal(h, t) for h in held_out for t in train_images)
    no_validation = config_lib.override(cfg, {"data.validation_split": None})
    _, metrics = training.run_experiment(no_validation, str(tmp_path / "run"), verbose=0)
    assert "val_accuracy" not in metrics and metrics["split"] == "test"


@pytest.mark.parametrize("key", ["data.eval_split", "data.validation_split"])
def test_an_empty_split_is_refused_before_training(idx_dir, tmp_path, key):
    """An empty test split used to fail only after the whole run had trained."""
    cfg = tiny_config(idx_dir, **{key: "test[:0]" if key == "data.eval_split" else "train[90%:90%]"})
    with pytest.raises(ConfigError, match=f"{key}=.* holds no examples"):
        training.run_experiment(cfg, str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run" / "logs").exists()  # nothing trained


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_weight_decay_leaves_biases_and_batchnorm_alone_unless_asked(name):
    """AdamW and SGD decayed BatchNorm's gamma and beta and every bias too; configs written before the field keep
    that behaviour when they are read back."""
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3), keras.layers.BatchNormalization(),
                              keras.layers.Flatten(), keras.layers.Dense(3)])
    for weight in model.trainable_weights:
        weight.assign(np.ones(weight.shape, "float32"))
    for everything in (False, True):
        cfg = schema.OptimizerConfig(name=name, learning_rate=0.1, weight_decay=0.5, schedule="constant",
                                     momentum=0.0, decay_norms_and_biases=everything)
        optimizer = training.make_optimizer(cfg, steps_per_epoch=1, epochs=1)
        before = {w.path: w.numpy().copy() for w in model.trainable_weights}
        optimizer.apply([np.zeros(w.shape, "float32") for w in model.trainable_weights], model.trainable_weights)
        after = {w.path: w.numpy() for w in model.trainable_weights}
        decayed = {path for path in before if not np.array_equal(before[path], after[path])}
        kernels = {w.path for w in model.trainable_weights if w.path.endswith("kernel")}
        assert decayed == (set(before) if everything else kernels), (everything, decayed)
    old = config_lib.to_dict(experiments.get_experiment("fashion_mnist_cnn"))
    del old["optimizer"]["decay_norms_and_biases"]
    assert experiments.from_dict(old).optimizer.decay_norms_and_biases is True
    assert experiments.get_experiment("fashion_mnist_cnn").optimizer.decay_norms_and_biases is False
