"""Measuring models: the figures that go into metrics.json and the zoo registry."""

import os

import keras
import tensorflow as tf

from tfadv import data as data_lib
from tfadv import experiments
from tfadv import models  # noqa: F401 - registers the serializable layers load_model needs
from tfadv import zoo
from tfadv.errors import ZooError


def predictor(model_or_fn):
    """Returns a compiled function images -> outputs for a Keras model, or the callable itself."""
    if isinstance(model_or_fn, keras.Model):
        return tf.function(lambda images: model_or_fn(images, training=False), reduce_retracing=True)
    return model_or_fn


def evaluate_classifier(model_or_fn, dataset: tf.data.Dataset) -> dict:
    """Top-1 accuracy of a classifier (Keras model or a SavedModel's ``serve``) over ``dataset``."""
    predict = predictor(model_or_fn)
    correct = total = 0
    for images, labels in dataset:
        logits = predict(images)
        correct += int(tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == labels, tf.int32)))
        total += int(labels.shape[0])
    if total == 0:
        raise ValueError("evaluate_classifier got an empty dataset.")
    return {"accuracy": correct / total, "num_examples": total}


def load_run(workdir: str):
    """Returns (config, model) of a training run folder."""
    cfg = experiments.load_json(os.path.join(workdir, "config.json"))
    path = os.path.join(workdir, "model.keras")
    if not os.path.isfile(path):
        raise ZooError(f"No trained model at {path!r}: train the run first (tfadv-train --workdir={workdir}).")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - corrupt archives raise many types
        raise ZooError(f"Cannot load {path!r} ({type(e).__name__}: {str(e).splitlines()[0][:200]}).") from None
    return cfg, model


def measure_classifier(predict, dataset_name, split, batch_size, source, idx_dir, tfds_data_dir) -> dict:
    """Accuracy of ``predict`` (images -> logits) on a dataset split, with the data source used."""
    ds, info = data_lib.load(dataset_name, split, batch_size=batch_size, source=source, idx_dir=idx_dir,
                             tfds_data_dir=tfds_data_dir)
    result = evaluate_classifier(predict, ds)
    return {"dataset": dataset_name, "split": split, "accuracy": result["accuracy"],
            "num_examples": result["num_examples"], "data_source": f"{info.source}:{info.location}"}


def evaluate_zoo_entry(name: str, zoo_dir=None, split="test", source="auto", idx_dir=None, tfds_data_dir=None,
                       batch_size=256) -> dict:
    """Loads a zoo entry (checksum verified) and measures it on ``split`` of its dataset."""
    found = zoo.entry(name, zoo_dir)
    loaded = zoo.load(name, zoo_dir)
    metrics = measure_classifier(loaded.serve, found["dataset"], split, batch_size, source, idx_dir, tfds_data_dir)
    return {"zoo_name": name, **metrics}


def evaluate_run(workdir: str, split="test", source="auto", idx_dir=None, tfds_data_dir=None,
                 batch_size=256) -> dict:
    """Measures a training run's model.keras on ``split`` of its dataset."""
    cfg, model = load_run(workdir)
    return {"workdir": workdir, **measure_classifier(model, cfg.data.dataset, split, batch_size, source, idx_dir,
                                           tfds_data_dir)}
