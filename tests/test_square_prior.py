"""tfadv.autoattack.square started from a prior image (``x_init``) and its queries to success (``return_queries``)."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import brightness_classifier, brightness_task
from test_autoattack_square import reference_square

from tfadv.autoattack import square as sq
from tfadv.budgets import perturbation_norms
from tfadv.errors import ConfigError

# Budgets that fool some of the brightness images within 100 queries, not all, and the query budgets that split
# them (L-inf fools within a few queries or not at all; L2 spreads over tens of queries).
SETTINGS = {"linf": (0.04, (2, 4, 7)), "l2": (3.0, (16, 40, 60))}


@pytest.fixture(scope="module")
def model():
    return brightness_classifier()


def predictions(model, images):
    return np.argmax(model(np.asarray(images)), -1)


def task(n, seed, misclassified=4):
    """Brightness images, the first ``misclassified`` of them with a wrong label (not attacked)."""
    x, y = brightness_task(n, seed=seed)
    y[:misclassified] = (y[:misclassified] + 1) % 10
    return x, y


@pytest.mark.parametrize("norm, eps", [("linf", 0.04), ("linf", 0.3), ("l2", 1.5), ("l2", 6.0)])
def test_far_start_is_projected_into_the_budget(model, norm, eps):
    x, y = task(12, seed=20)
    far = np.concatenate([1.0 - x[:6], np.random.default_rng(0).uniform(-2, 3, x[6:].shape)]).astype(np.float32)
    far[7, 3, 3, 0] = np.nan  # a non-finite pixel takes the clean one
    far[8, 5, 5, 0] = np.inf
    for n_queries in (1, 30):
        x_adv, queries = sq.square(model, x, y, norm=norm, eps=eps, n_queries=n_queries, x_init=far,
                                   return_queries=True)
        x_adv = np.asarray(x_adv)
        assert np.all(np.isfinite(x_adv)) and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
        assert np.all(perturbation_norms(x, x_adv, norm) <= eps + 1e-6), perturbation_norms(x, x_adv, norm) - eps
        np.testing.assert_array_equal(x_adv[:4], x[:4])  # misclassified clean: returned unchanged
        assert np.all(queries[:4] == 0) and np.all(queries[4:] != 0)
    assert np.all(perturbation_norms(x[4:], x_adv[4:], norm) > 0.5 * eps)  # the far start used the budget


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("prior", [False, True])
def test_queries_match_separate_shorter_runs(model, norm, prior):
    """An image took at most q queries iff a separate run of q - 1 iterations (the start is query 1) fooled it."""
    eps, budgets = SETTINGS[norm]
    x, y = task(48, seed=21)
    x_init = None
    if prior:  # a noisy prior within the budget
        x_init = np.clip(x + np.random.default_rng(1).uniform(-eps, eps, x.shape) / (1 if norm == "linf" else 10),
                         0, 1).astype(np.float32)
    x_adv, queries = sq.square(model, x, y, norm=norm, eps=eps, n_queries=100, x_init=x_init, return_queries=True)
    assert queries.dtype == np.int32 and queries.shape == (48,)
    assert np.all(queries[:4] == 0) and np.all(queries[4:] != 0)
    assert np.all((queries[4:] == -1) | (queries[4:] >= 1)) and queries.max() <= 101
    fooled = queries > 0
    assert 0 < fooled.sum() < 44
    adv_predictions = predictions(model, x_adv)
    assert np.all(adv_predictions[fooled] != y[fooled])
    assert np.all(adv_predictions[queries == -1] == y[queries == -1])
    counts = []
    for q in budgets:
        shorter = np.asarray(sq.square(model, x, y, norm=norm, eps=eps, n_queries=q - 1, x_init=x_init))
        fooled_by_shorter = (predictions(model, shorter) != y) & (queries != 0)
        np.testing.assert_array_equal((queries > 0) & (queries <= q), fooled_by_shorter, err_msg=f"q={q}")
        np.testing.assert_array_equal(shorter[fooled_by_shorter], np.asarray(x_adv)[fooled_by_shorter])
        counts.append(fooled_by_shorter.sum())
    assert len(set(counts + [fooled.sum()])) >= 3, counts  # the budgets separate the images: the check has teeth


@pytest.mark.parametrize("norm, eps, n_queries", [("linf", 0.1, 50), ("l2", 4.0, 200)])
def test_a_start_that_fools_takes_one_query(model, norm, eps, n_queries):
    """Square's own adversarial images as the prior: each image they fool is fooled by the start, at query 1."""
    x, y = task(32, seed=22)
    first, first_queries = sq.square(model, x, y, norm=norm, eps=eps, n_queries=n_queries, return_queries=True)
    fooled = first_queries > 0
    assert fooled.sum() >= 16 and np.all(predictions(model, first)[fooled] != y[fooled])
    x_adv, queries = sq.square(model, x, y, norm=norm, eps=eps, n_queries=n_queries, x_init=first, seed=5,
                               return_queries=True)
    np.testing.assert_array_equal(queries[fooled], 1)
    assert np.all(queries[:4] == 0) and np.all(queries[4:][~fooled[4:]] != 1)
    np.testing.assert_allclose(np.asarray(x_adv)[fooled], np.asarray(first)[fooled], atol=1e-6)  # start kept
    assert sq.query_curve(queries)["success_at"][10] >= fooled.sum() / 28


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_results_unchanged_by_the_new_arguments(model, norm):
    """Same seed: x_adv without the new arguments = with return_queries = the reference port's (the old path)."""
    eps = SETTINGS[norm][0]
    x, y = task(32, seed=23)
    plain = np.asarray(sq.square(model, x, y, norm=norm, eps=eps, n_queries=60, seed=2))
    with_queries, queries = sq.square(model, x, y, norm=norm, eps=eps, n_queries=60, seed=2, x_init=None,
                                      return_queries=True)
    np.testing.assert_array_equal(np.asarray(with_queries), plain)
    assert 0 < np.sum(queries > 0) < 28
    attacked = np.flatnonzero(queries != 0)
    reference = reference_square(model, x[attacked], y[attacked], norm, eps, 60, seed=2)
    np.testing.assert_allclose(plain[attacked], reference, atol=1e-5)  # L-inf bit-exact, L2 up to summation order


def test_reference_start_as_prior_reproduces_the_run(model):
    """x_init = the reference's own (L-inf, in-budget) start: the same run, image for image and query for query."""
    x, _ = brightness_task(32, seed=24)
    y = predictions(model, x)  # all attacked, so the start is drawn for the whole batch
    start = sq._start(tf.constant(x), "linf", 0.04, tf.constant([0, 0], tf.int32))
    plain, queries = sq.square(model, x, y, norm="linf", eps=0.04, n_queries=60, return_queries=True)
    prior, prior_queries = sq.square(model, x, y, norm="linf", eps=0.04, n_queries=60, x_init=start,
                                     return_queries=True)
    np.testing.assert_array_equal(np.asarray(prior), np.asarray(plain))
    np.testing.assert_array_equal(prior_queries, queries)


def test_no_image_attacked_gives_zero_queries(model):
    x, y = task(4, seed=25)
    x_adv, queries = sq.square(model, x, y, norm="linf", eps=0.1, n_queries=5, x_init=1 - x, return_queries=True)
    np.testing.assert_array_equal(np.asarray(x_adv), x)
    np.testing.assert_array_equal(queries, np.zeros(4, np.int32))


def test_query_curve():
    curve = sq.query_curve(np.array([0, 1, 5, 50, -1, 2000, 0], np.int32))
    assert curve == {"attacked": 5, "success_at": {10: 0.4, 100: 0.6, 1000: 0.6}, "success": 0.8,
                     "median_queries": 27.5}
    assert sq.query_curve([0, -1, -1], budgets=(3,)) == {"attacked": 2, "success_at": {3: 0.0}, "success": 0.0,
                                                         "median_queries": None}
    assert sq.query_curve([0, 0]) == {"attacked": 0, "success_at": {10: None, 100: None, 1000: None},
                                      "success": None, "median_queries": None}


def test_x_init_of_another_shape_raises_config_error():
    x, y = brightness_task(2)
    with pytest.raises(ConfigError, match=r"x_init.*\(2, 28, 28\).*\(2, 28, 28, 1\)") as error:
        sq.square(lambda images: tf.zeros([tf.shape(images)[0], 10]), x, y, norm="linf", eps=0.1, x_init=x[..., 0])
    assert "\n" not in str(error.value)
