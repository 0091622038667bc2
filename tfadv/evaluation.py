"""Measuring models: the figures that go into metrics.json and the zoo registry."""

import os

import keras
import tensorflow as tf

from tfadv import data as data_lib
from tfadv import experiments
from tfadv import models  # noqa: F401 - registers the serializable layers load_model needs
from tfadv import progress, zoo
from tfadv.errors import ConfigError, ZooError
from tfadv.metrics import AttackMetrics


def predictor(model_or_fn):
    """Returns a compiled function images -> outputs for a Keras model, or the callable itself."""
    if isinstance(model_or_fn, keras.Model):
        return tf.function(lambda images: model_or_fn(images, training=False), reduce_retracing=True)
    return model_or_fn


def evaluate_classifier(model_or_fn, dataset: tf.data.Dataset) -> dict:
    """Top-1 accuracy of a classifier (Keras model or a SavedModel's ``serve``) over ``dataset``."""
    predict = predictor(model_or_fn)
    correct = total = 0
    for images, labels in progress.bar(dataset, label="Evaluating the classifier"):
        logits = predict(images)
        correct += int(tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == labels, tf.int32)))
        total += int(labels.shape[0])
    if total == 0:
        raise ValueError("evaluate_classifier got an empty dataset.")
    return {"accuracy": correct / total, "num_examples": total}


def measure_attack(attack, classifier, dataset: tf.data.Dataset, target_class: int | None = None,
                   confusion: bool = False) -> dict:
    """Attack metrics of ``attack`` (x -> x_hat) against ``classifier`` (x -> logits) over ``dataset``.

    Both may be Keras models or SavedModel ``serve`` functions. Returns
    adv_accuracy, clean_accuracy, fooling_rate, L2 / L-inf mean and max of
    x_hat - x (and target_success when ``target_class`` is set), num_examples,
    and ``x_hat_range`` (min, max) to check the [0, 1] contract. With
    ``confusion``: the confusion matrix of true label -> prediction on x_hat
    (rows: true classes) and the share of images sent to the most common class.
    """
    attack, classifier = predictor(attack), predictor(classifier)
    metrics = AttackMetrics(targeted=target_class is not None)
    total, low, high, pairs = 0, float("inf"), float("-inf"), []
    for images, labels in progress.bar(dataset, label="Measuring the attack"):
        x_hat = attack(images)
        adv_logits = classifier(x_hat)
        metrics.update(images, x_hat, labels, classifier(images), adv_logits, target_class)
        if confusion:
            pairs.append((labels, tf.argmax(adv_logits, -1, output_type=tf.int32), adv_logits.shape[-1]))
        total += int(labels.shape[0])
        low, high = min(low, float(tf.reduce_min(x_hat))), max(high, float(tf.reduce_max(x_hat)))
    if total == 0:
        raise ValueError("measure_attack got an empty dataset.")
    result = {**{m.name: round(float(m.result()), 6) for m in metrics.trackers}, "num_examples": total,
              "x_hat_range": [low, high]}
    if confusion:
        k = pairs[0][2]
        matrix = sum(tf.math.confusion_matrix(y, p, num_classes=k) for y, p, _ in pairs).numpy()
        result["confusion"] = matrix.tolist()
        result["top_destination_share"] = round(float(matrix.sum(0).max() / matrix.sum()), 6)
    return result


def load_target(target: str, zoo_dir: str | None = None):
    """The frozen classifier an attack trains against: a .keras file, a SavedModel directory or a zoo entry name.

    A ``?pixel_scale=S`` suffix (tfadv.byo.with_pixel_scale) wraps a model that expects pixels in [0, S].
    """
    from tfadv import byo

    path, pixel_scale = byo.split_target(target)
    if path.endswith(".keras"):
        if not os.path.isfile(path):
            raise ConfigError(f"Target classifier file {path!r} does not exist.")
        model = keras.saving.load_model(path, safe_mode=True)
        model.trainable = False
    elif byo.is_saved_model_dir(path):
        model = byo.SavedModelClassifier(path)
    elif os.path.isdir(path):
        raise ConfigError(f"Target directory {path!r} holds no saved_model.pb: not a SavedModel.")
    else:
        model = zoo.keras_layer(path, zoo_dir)
    return model if pixel_scale == 1.0 else byo.PixelScale(model, pixel_scale)


def load_run(workdir: str):
    """Returns (config, model) of a training run folder."""
    cfg = experiments.load_json(os.path.join(workdir, "config.json"))
    path = os.path.join(workdir, "attacker.keras" if cfg.kind == "perturbation" else "model.keras")
    # A defence run's model.keras is its defended classifier: it is evaluated and exported like any classifier.
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
                       batch_size=256, target: str | None = None) -> dict:
    """Loads a zoo entry (checksum verified) and measures it on ``split`` of its dataset.

    Classifiers get their accuracy; perturbation entries their attack metrics
    against their own target, or against ``target`` (another zoo classifier:
    the transfer / black-box question).
    """
    found = zoo.entry(name, zoo_dir)
    loaded = zoo.load(name, zoo_dir)
    if found["kind"] in ("classifier", "defended_classifier"):
        metrics = measure_classifier(loaded.serve, found["dataset"], split, batch_size, source, idx_dir,
                                     tfds_data_dir)
        return {"zoo_name": name, **metrics}
    target = target or found["target"]
    classifier = zoo.load(target, zoo_dir)
    ds, info = data_lib.load(found["dataset"], split, batch_size=batch_size, source=source, idx_dir=idx_dir,
                             tfds_data_dir=tfds_data_dir)
    metrics = measure_attack(loaded.serve, classifier.serve, ds, found["config"].get("target_class"),
                             confusion=found["kind"] == "universal")
    return {"zoo_name": name, "target": target, "dataset": found["dataset"], "split": split, **metrics,
            "data_source": f"{info.source}:{info.location}"}


def evaluate_run(workdir: str, split="test", source="auto", idx_dir=None, tfds_data_dir=None,
                 batch_size=256) -> dict:
    """Measures a training run's model.keras on ``split`` of its dataset."""
    cfg, model = load_run(workdir)
    if cfg.kind == "perturbation":
        ds, info = data_lib.load(cfg.data.dataset, split, batch_size=batch_size, source=source, idx_dir=idx_dir,
                                 tfds_data_dir=tfds_data_dir)
        metrics = measure_attack(model, load_target(cfg.target), ds, cfg.target_class)
        return {"workdir": workdir, "target": cfg.target, "split": split, **metrics,
                "data_source": f"{info.source}:{info.location}"}
    return {"workdir": workdir, **measure_classifier(model, cfg.data.dataset, split, batch_size, source, idx_dir,
                                                     tfds_data_dir)}
