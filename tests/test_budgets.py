"""The budget is a guarantee: property tests on hostile inputs, checked in float64."""


import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfadv import budgets
from tfadv.errors import ConfigError

from conftest import rewrite_keras_file

SHAPE = (3, 6, 5, 2)
hostile = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32, allow_subnormal=False),
    st.sampled_from([0.0, -0.0, 1e-38, -1e-38, 1e30, -3e38, 1.0, -1.0]),
)


def norms64(delta, norm):
    flat = np.asarray(delta, np.float64).reshape(len(delta), -1)
    return np.sqrt((flat**2).sum(1)) if norm == "l2" else np.abs(flat).max(1)


@settings(max_examples=60, deadline=None)
@given(
    raw=hnp.arrays(np.float32, SHAPE, elements=hostile),
    x=hnp.arrays(np.float32, SHAPE, elements=st.floats(0, 1, width=32, allow_subnormal=False)),
    norm=st.sampled_from(budgets.NORMS),
    rule=st.sampled_from(budgets.RULES),
    eps=st.sampled_from([1e-4, 0.03, 0.3, 2.4, 10.0, 1e4]),
)
def test_every_delta_satisfies_its_bound_and_pixel_range(raw, x, norm, rule, eps):
    x_hat = budgets.bounded_perturbation(x, raw, norm, eps, rule).numpy()
    assert np.all(np.isfinite(x_hat))
    assert x_hat.min() >= 0.0 and x_hat.max() <= 1.0
    delta = x_hat.astype(np.float64) - x.astype(np.float64)
    assert np.all(norms64(delta, norm) <= eps), (norms64(delta, norm), eps)
    assert np.all(norms64(budgets.constrain(raw, norm, eps, rule).numpy(), norm) <= eps)


@settings(max_examples=30, deadline=None)
@given(raw=hnp.arrays(np.float32, SHAPE, elements=st.floats(0.0010000000474974513, 1, width=32, allow_subnormal=False)),
       norm=st.sampled_from(budgets.NORMS), eps=st.sampled_from([0.05, 2.4]))
def test_the_threshold_rule_uses_the_whole_budget(raw, norm, eps):
    raw = raw * np.where(np.arange(raw.size).reshape(raw.shape) % 3, 1, -1).astype(np.float32)  # both signs
    delta = budgets.constrain(raw, norm, eps, "threshold").numpy()
    np.testing.assert_allclose(norms64(delta, norm), eps, rtol=1e-4)


def test_the_project_rule_leaves_small_perturbations_alone():
    raw = np.full(SHAPE, 1e-3, np.float32)
    np.testing.assert_allclose(budgets.constrain(raw, "l2", 2.4, "project"), raw)
    np.testing.assert_allclose(budgets.constrain(raw, "linf", 0.1, "project"), raw)


def test_clipping_never_adds_magnitude_on_saturated_images():
    x = np.concatenate([np.zeros((1, 4, 4, 1)), np.ones((1, 4, 4, 1))]).astype(np.float32)
    raw = np.concatenate([-np.ones((1, 4, 4, 1)), np.ones((1, 4, 4, 1))]).astype(np.float32)
    x_hat = budgets.bounded_perturbation(x, raw, "l2", 2.0).numpy()
    np.testing.assert_array_equal(x_hat, x)  # all of the perturbation points out of range


def test_layer_is_differentiable_and_serializable(tmp_path):
    layer = budgets.NormBoundedPerturbation("l2", 1.5)
    x = tf.random.uniform((2, 8, 8, 1), 0.2, 0.8, seed=0)
    raw = tf.Variable(tf.random.normal((2, 8, 8, 1), seed=1))
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(layer([x, raw]) * tf.random.normal((2, 8, 8, 1), seed=2))
    grad = tape.gradient(out, raw)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0
    inputs = [keras.Input((8, 8, 1)), keras.Input((8, 8, 1))]
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded([x, raw]), model([x, raw]), atol=1e-6)
    assert reloaded.layers[-1].get_config()["eps"] == 1.5


@pytest.mark.parametrize("old", [{"mode": "scale"}, {"mode": "project"}, {}])
def test_a_layer_saved_before_the_rename_reads_back_with_its_rule_and_computes_the_same(old, tmp_path):
    """``.keras`` files and preset folders written before hold ``mode`` ("scale": today's "threshold") and no
    ``rule``: they read back as the layer they were, whose output is the same."""
    rule = {"scale": "threshold", "project": "project"}.get(old.get("mode"), "threshold")
    layer = budgets.NormBoundedPerturbation("linf", 0.1, rule=rule, name="budget")
    config = {key: value for key, value in layer.get_config().items() if key != "rule"}
    assert budgets.NormBoundedPerturbation.from_config({**config, **old}).get_config() == layer.get_config()
    # ... and inside a saved model, as keras.saving.load_model meets it
    inputs = [keras.Input((8, 8, 1)), keras.Input((8, 8, 1))]
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "new.keras")

    def as_before(saved):
        budget = next(entry for entry in saved["config"]["layers"] if entry["config"]["name"] == "budget")
        del budget["config"]["rule"]
        budget["config"].update(old)

    rewrite_keras_file(tmp_path / "new.keras", tmp_path / "old.keras", as_before)
    reloaded = keras.saving.load_model(tmp_path / "old.keras")
    assert reloaded.get_layer("budget").rule == rule
    x = tf.random.uniform((2, 8, 8, 1), 0.2, 0.8, seed=0)
    raw = tf.random.normal((2, 8, 8, 1), seed=1)
    np.testing.assert_array_equal(reloaded([x, raw]), model([x, raw]))
    with pytest.raises(ConfigError, match=r"rule must be one of \('threshold', 'project'\). Received: rule='scale'"):
        budgets.NormBoundedPerturbation("linf", 0.1, rule="scale")  # the old name, given today: one name


@pytest.mark.parametrize("norm,eps,message", [
    ("l1", 1.0, "norm must be one of"),
    ("l2", 0.0, "eps must be finite and > 0"),
    ("l2", -1.0, "eps must be finite and > 0"),
    ("linf", float("nan"), "eps must be finite and > 0"),
    ("linf", float("inf"), "eps must be finite and > 0"),
    ("l2", "big", "eps must be a number"),
])
def test_bad_budgets_are_refused(norm, eps, message):
    with pytest.raises(ConfigError, match=message):
        budgets.NormBoundedPerturbation(norm, eps)
    with pytest.raises(ConfigError, match=message):
        budgets.constrain(np.zeros((1, 2, 2, 1), np.float32), norm, eps)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("norm,eps", [("l2", 2.4), ("l2", 0.5), ("linf", 0.1)])
@pytest.mark.parametrize("rule", budgets.RULES)
def test_half_precision_deltas_stay_inside_the_budget(dtype, norm, eps, rule):
    """Norms summed in float16 overran L2 2.4 by 0.002, and L-inf raised a dtype error; the bound now holds in
    float64 over the half-precision values themselves."""
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1.0, 30.0, 1000.0):
        raw = tf.cast(rng.standard_normal((64, 28, 28, 1)) * scale, dtype)
        delta = budgets.constrain(raw, norm, eps, rule)
        assert delta.dtype == raw.dtype
        flat = tf.cast(delta, tf.float64).numpy().reshape(64, -1)
        sizes = np.sqrt((flat**2).sum(1)) if norm == "l2" else np.abs(flat).max(1)
        assert sizes.max() <= eps, (scale, sizes.max())
