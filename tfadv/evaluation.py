"""Measuring models: the figures that go into metrics.json and the zoo registry."""

import keras
import tensorflow as tf

from tfadv import data as data_lib
from tfadv import models  # noqa: F401 - registers the serializable layers load_model needs
from tfadv import progress, zoo
from tfadv.errors import ZooError
from tfadv.metrics import AttackMetrics
from tfadv.targets import load_entry_target, load_target


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


CLASSIFIER_KINDS = ("classifier", "defended_classifier")  # zoo kinds that serve logits; the others serve x_hat


def measure_entry(kind: str, model, dataset: tf.data.Dataset, target=None, target_class: int | None = None) -> dict:
    """The figures the registry records for a model of zoo ``kind`` (Keras model or SavedModel ``serve``).

    Classifier kinds get their accuracy; attack kinds (perturbation, universal) their attack metrics against
    ``target`` (images -> logits), universal ones with the confusion matrix of where the images were sent.
    Export, re-guarding and ``tfadv-evaluate`` all measure through here, so they agree by construction.
    """
    if kind in CLASSIFIER_KINDS:
        return evaluate_classifier(model, dataset)
    if target is None:
        raise ZooError(f"A {kind} model is measured against a target classifier; none was given.")
    return measure_attack(model, target, dataset, target_class, confusion=kind == "universal")


def evaluate_zoo_entry(name: str, zoo_dir=None, split="test", source="auto", idx_dir=None, tfds_data_dir=None,
                       batch_size=256, target: str | None = None) -> dict:
    """Loads a zoo entry (checksum verified) and measures it on ``split`` of its dataset.

    Classifiers get their accuracy; perturbation entries their attack metrics
    against their own target, or against ``target`` (another zoo classifier:
    the transfer / black-box question).
    """
    found = zoo.entry(name, zoo_dir)
    loaded = zoo.load(name, zoo_dir)
    ds, info = data_lib.load(found["dataset"], split, batch_size=batch_size, source=source, idx_dir=idx_dir,
                             tfds_data_dir=tfds_data_dir)
    read = {"split": split, "data_source": f"{info.source}:{info.location}"}
    if found["kind"] in CLASSIFIER_KINDS:
        metrics = measure_entry(found["kind"], loaded.serve, ds)
        return {"zoo_name": name, "dataset": found["dataset"], **read, "accuracy": metrics["accuracy"],
                "num_examples": metrics["num_examples"]}
    # The caller's own target is trusted as given; the entry's is verified like the entry.
    classifier = load_target(target, zoo_dir) if target else load_entry_target(name, zoo_dir)
    target = target or found["target"]
    metrics = measure_entry(found["kind"], loaded.serve, ds, classifier, found["config"].get("target_class"))
    return {"zoo_name": name, "target": target, "dataset": found["dataset"], **read, **metrics}
