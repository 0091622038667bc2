"""The committed zoo keeps its contract: every figure in zoo/registry.json is reproduced by plain TensorFlow."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfadv import data as data_lib
from tfadv import zoo
from tfadv.budgets import bounded_perturbation
from tfadv.evaluation import measure_attack

ZOO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "zoo")
REGISTRY = zoo.read_registry(ZOO)
ARTIFACTS = sorted(n for n, e in REGISTRY.items() if e.get("path"))
FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def test_registry_has_the_fashion_mnist_classifier_at_target():
    entry = REGISTRY["fashion_mnist_small_cnn"]
    assert entry["kind"] == "classifier" and entry["dataset"] == "fashion_mnist"
    assert entry["metrics"]["num_examples"] == 10000 and entry["metrics"]["split"] == "test"
    assert entry["metrics"]["accuracy"] >= 0.93


@pytest.mark.parametrize("name", ARTIFACTS)
def test_entry_is_complete_small_and_verified(name):
    entry = zoo.entry(name, ZOO)
    assert {"kind", "dataset", "path", "sha256", "metrics", "config"} <= set(entry)
    path = zoo.verify(name, ZOO)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    assert size < 8 * 2**20, f"{name} is {size / 2**20:.1f} MiB"
    loaded = tf.saved_model.load(path)
    shape = tuple(entry["input_shape"])
    out = loaded.serve(tf.zeros((2,) + shape))
    if entry["kind"] in ("classifier", "defended_classifier"):
        assert out.shape == (2, 10)
    else:
        assert out.shape == (2,) + shape


@pytest.mark.skipif(not os.path.exists(FASHION), reason="needs Debian's dataset-fashion-mnist (make test installs it)")
@pytest.mark.parametrize("name", [n for n in ARTIFACTS if REGISTRY[n]["dataset"] == "fashion_mnist"])
def test_registry_figures_reproduce_with_plain_tensorflow(name):
    entry = REGISTRY[name]
    ds, info = data_lib.load("fashion_mnist", "test", batch_size=256, source="idx")  # as export measured
    model = tf.saved_model.load(os.path.join(ZOO, entry["path"]))
    if entry["kind"] in ("classifier", "defended_classifier"):
        correct = sum(int(np.sum(np.argmax(model.serve(x), -1) == y)) for x, y in ds)
        assert correct / 10000 == pytest.approx(entry["metrics"]["accuracy"], abs=1e-4)
        return
    target = tf.saved_model.load(os.path.join(ZOO, REGISTRY[entry["target"]]["path"]))
    measured = measure_attack(model.serve, target.serve, ds, entry["config"].get("target_class"))
    for key in ("adv_accuracy", "fooling_rate", "l2_mean", "linf_max"):
        assert measured[key] == pytest.approx(entry["metrics"][key], abs=2e-4), key
    budget = entry.get("budget")
    if budget:
        assert measured[f"{budget['norm']}_max"] <= budget["eps"]
    assert 0.0 <= measured["x_hat_range"][0] and measured["x_hat_range"][1] <= 1.0


# (entry, robustness key) for every defence table recorded by tools/evaluate_defense.py --record
ROBUST = sorted((n, k) for n in ARTIFACTS for k in REGISTRY[n]["metrics"] if k.startswith("robustness_"))


def test_defended_entries_carry_the_full_defence_table():
    recorded = {(n, k) for n, k in ROBUST if REGISTRY[n]["kind"] == "defended_classifier"}
    for norm, eps in (("linf", "0.1"), ("l2", "1.5")):
        names = {n for n, k in recorded if k == f"robustness_{norm}_{eps}"}
        assert {f"fashion_mnist_joint_defense_{norm}", f"fashion_mnist_pgd_defense_{norm}"} <= names, norm
    for name, key in ROBUST:
        table = REGISTRY[name]["metrics"][key]
        assert {"clean", "fresh_generator", "pgd100x2", "settings"} <= set(table), name
        assert table["clean"] == pytest.approx(REGISTRY[name]["metrics"]["accuracy"], abs=1e-4)
        assert all(0.0 <= v <= 1.0 for k, v in table.items() if k != "settings")
        generator = f"{name}_generator"
        assert ("co_trained_generator" in table) == (generator in REGISTRY), name
        if generator in REGISTRY:
            assert REGISTRY[generator]["target"] == name and REGISTRY[generator]["co_trained"]


@pytest.mark.skipif(not os.path.exists(FASHION), reason="needs Debian's dataset-fashion-mnist (make test installs it)")
@pytest.mark.parametrize("name,key", ROBUST)
def test_defence_attack_figures_reproduce_with_plain_tensorflow(name, key):
    """The transfer and co-trained generator columns (fixed attacks) recomputed from the SavedModels alone."""
    table = REGISTRY[name]["metrics"][key]
    ds, _ = data_lib.load("fashion_mnist", "test", batch_size=500, source="idx")
    classifier = tf.saved_model.load(os.path.join(ZOO, REGISTRY[name]["path"]))
    attacks = {c: c.split(":", 1)[1] for c in table if c.startswith("transfer:")}  # NAME or NAME@EPS
    if "co_trained_generator" in table:
        attacks["co_trained_generator"] = f"{name}_generator"
    norm = table["settings"]["norm"]
    for column, entry in attacks.items():
        entry, _, eps = entry.partition("@")
        attack = tf.saved_model.load(os.path.join(ZOO, REGISTRY[entry]["path"]))
        correct = 0
        for x, y in ds:
            x_adv = attack.serve(x)
            if eps:  # a larger-budget attack, projected onto the table's ball
                x_adv = bounded_perturbation(x, x_adv - x, norm, float(eps), mode="project")
            correct += int(np.sum(np.argmax(classifier.serve(x_adv), -1) == y))
        assert correct / 10000 == pytest.approx(table[column], abs=1e-4), column
