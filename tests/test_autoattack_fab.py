"""FAB-T (tfadv.autoattack.fab): its projections against independent solvers, its distances on a linear classifier
against the closed form, and its budget and bookkeeping on the brightness task. ART has no FAB to compare with."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linprog, minimize

from conftest import brightness_classifier, brightness_task
from tfadv.autoattack import fab
from tfadv.budgets import perturbation_norms
from tfadv.errors import ConfigError


def _problems(seed, count=40):
    """Small hyperplane-and-box problems (t, w, b), D = 6 .. 20: b a fraction of the way from w . t to the box's
    extreme value of w . x (fractions > 1: out of the box's reach); some w_i = 0, some t_i on a bound."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        dim = int(rng.integers(6, 21))
        t = rng.uniform(0, 1, dim)
        t[rng.random(dim) < 0.15] = rng.choice([0.0, 1.0])
        w = rng.normal(size=dim)
        w[rng.random(dim) < 0.15] = 0.0
        extreme = np.sum(np.maximum(w, 0)) if i % 2 else np.sum(np.minimum(w, 0))
        fraction = (0.02, 0.2, 0.5, 0.9, 1.3)[i % 5]
        b = w @ t + fraction * (extreme - w @ t)
        yield t.astype(np.float32), w.astype(np.float32), np.float32(b), fraction > 1


def _project(norm, t, w, b):
    project = fab.projection_linf if norm == "linf" else fab.projection_l2
    return project(tf.constant(t[None]), tf.constant(w[None]), tf.constant([b])).numpy()[0].astype(np.float64)


def _corner(t, w, b):
    """The box corner the reference returns when the hyperplane is out of reach: every coordinate with w != 0 at
    the bound that moves w . x towards b."""
    down = w @ t - b >= 0
    return np.where(w == 0, t, np.where((w > 0) == down, 0.0, 1.0))


def _linf_solution(t, w, b):
    """min lam s.t. |d_i| <= lam, w . (t + d) = b, 0 <= t + d <= 1 by linear programming; None if infeasible."""
    dim = len(t)
    cost = np.r_[np.zeros(dim), 1.0]
    bounds_rows = np.block([[np.eye(dim), -np.ones((dim, 1))], [-np.eye(dim), -np.ones((dim, 1))]])
    result = linprog(cost, A_ub=bounds_rows, b_ub=np.zeros(2 * dim), A_eq=np.r_[w, 0.0][None], b_eq=[b - w @ t],
                     bounds=[(-ti, 1 - ti) for ti in t] + [(0, None)], method="highs")
    return result.x[-1] if result.status == 0 else None


def _l2_solution(t, w, b):
    """min ||d||_2 s.t. w . (t + d) = b, 0 <= t + d <= 1 by SLSQP (the problems given are feasible)."""
    t, w, b = t.astype(np.float64), w.astype(np.float64), float(b)
    result = minimize(lambda d: d @ d, np.zeros_like(t), jac=lambda d: 2 * d, method="SLSQP",
                      bounds=[(-ti, 1 - ti) for ti in t], options={"ftol": 1e-14, "maxiter": 500},
                      constraints=[{"type": "eq", "fun": lambda d: w @ (t + d) - b, "jac": lambda d: w}])
    assert result.success, result.message
    return np.sqrt(result.fun)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projections_are_the_smallest_step_onto_the_hyperplane_in_the_box(norm):
    regimes = {"out of reach": 0, "reached": 0}
    for t, w, b, out_of_reach in _problems(seed={"linf": 0, "l2": 1}[norm]):
        d = _project(norm, t, w, b)
        moved = t + d
        if out_of_reach:
            assert _linf_solution(t, w, b) is None  # the solver agrees nothing in the box reaches the hyperplane
            np.testing.assert_allclose(moved, _corner(t, w, b), atol=1e-6)
            regimes["out of reach"] += 1
            continue
        assert moved.min() >= -1e-6 and moved.max() <= 1 + 1e-6
        assert w @ moved == pytest.approx(b, abs=1e-4 * (1 + float(np.abs(w).sum())))
        if norm == "linf":
            assert np.abs(d).max() == pytest.approx(_linf_solution(t, w, b), rel=1e-4, abs=1e-6)
        else:
            assert np.linalg.norm(d) == pytest.approx(_l2_solution(t, w, b), rel=1e-4, abs=1e-6)
        assert np.all(d[w == 0] == 0)
        regimes["reached"] += 1
    assert regimes == {"out of reach": 8, "reached": 32}


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_a_point_on_the_hyperplane_does_not_move(norm):
    t, w, _, _ = next(_problems(seed=2))
    np.testing.assert_allclose(_project(norm, t, w, np.float32(w @ t)), 0.0, atol=1e-6)  # float32 rounding of b


def _linear_classifier(seed=0, classes=10, shape=(8, 8, 1)):
    """A Keras Dense classifier on flattened images with random weights: (model, W [D, K], bias [K])."""
    rng = np.random.default_rng(seed)
    weights, bias = rng.normal(size=(int(np.prod(shape)), classes)).astype(np.float32), np.zeros(classes, np.float32)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(classes)])
    model.layers[-1].set_weights([weights, bias])
    return model, weights, bias


def _boundary_distances(x, weights, bias, norm):
    """Closed-form distance of each image to each class's boundary with the predicted class (box ignored):
    (z_y - z_k) / ||w_y - w_k||_q, q the dual norm; inf for the predicted class. Also the predictions."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    logits = flat @ weights + bias
    pred = logits.argmax(1)
    gap = logits[np.arange(len(x)), pred][:, None] - logits
    diff = weights.T[pred][:, None, :] - weights.T[None]  # [N, K, D]
    dual = np.abs(diff).sum(-1) if norm == "linf" else np.linalg.norm(diff, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(gap > 0, gap / dual, np.inf)
    return distance, pred, logits


@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 3.0)])
def test_linear_classifier_adversarials_lie_at_the_closed_form_distance(norm, eps):
    model, weights, bias = _linear_classifier()
    rng = np.random.default_rng(3)
    x = (0.5 + rng.uniform(-0.1, 0.1, (24, 8, 8, 1))).astype(np.float32)
    distance, labels, logits = _boundary_distances(x, weights, bias, norm)
    runner_up = np.argsort(-logits, axis=1)[:, 1]
    to_target = distance[np.arange(len(x)), runner_up]
    # The box stays inactive at the closed-form point: every pixel moves by at most that distance.
    assert to_target.max() < 0.35 and to_target.max() < eps

    adv = np.asarray(fab.fab_targeted(model, x, labels, norm=norm, eps=eps))
    found = perturbation_norms(x, adv, norm)
    assert np.all(np.argmax(model(adv).numpy(), 1) != labels)
    assert np.all(found >= distance.min(1) * (1 - 1e-4))  # nothing misclassified is closer than the nearest boundary
    # Within 1% of the first target's boundary: FAB's overshoot (eta) and its pull towards the clean image's
    # projection (alpha) leave it ~0.5% beyond the boundary of a linear classifier.
    assert np.all(found <= to_target * 1.01)

    # A budget under every image's nearest boundary fools nothing, and the clean images come back unchanged.
    small = float(distance.min()) * 0.5
    np.testing.assert_array_equal(np.asarray(fab.fab_targeted(model, x, labels, norm=norm, eps=small)), x)


@pytest.fixture(scope="module")
def brightness_model():
    return brightness_classifier()


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.5)])
def test_brightness_task_fooled_within_the_budget(brightness_model, norm, eps):
    images, labels = brightness_task(64, seed=1)
    labels = labels.copy()
    labels[:4] = (labels[:4] + 5) % 10  # four images the classifier gets wrong: never attacked, returned clean
    clean_pred = np.argmax(brightness_model(images).numpy(), 1)
    assert np.mean(clean_pred == labels) >= 0.9

    adv = np.asarray(fab.fab_targeted(brightness_model, images, labels, norm=norm, eps=eps))
    pred = np.argmax(brightness_model(adv).numpy(), 1)
    changed = np.any(adv != images, axis=(1, 2, 3))
    assert adv.dtype == np.float32 and adv.shape == images.shape
    assert np.all(perturbation_norms(images, adv, norm) <= eps + 1e-6)  # float64
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert np.all(pred[changed] != labels[changed])  # an image is only reported fooled if it is misclassified
    assert not changed[clean_pred != labels].any()
    assert np.mean(pred != labels) >= 0.8

    # Later targets ran on ever fewer images, through the one trace (batch dimension None).
    run = fab._compiled(brightness_model, norm, eps, 100, 0.1, 1.05, 0.9, (28, 28, 1))
    assert run.experimental_get_tracing_count() == 1


def test_float16_logits_are_computed_in_float32():
    model, weights, bias = _linear_classifier(seed=4, classes=4, shape=(4, 4, 1))
    x = np.full((6, 4, 4, 1), 0.5, np.float32) + np.linspace(-0.1, 0.1, 16, dtype=np.float32).reshape(1, 4, 4, 1)
    x[:, 0, 0, 0] = np.linspace(0.2, 0.8, 6)
    labels = _boundary_distances(x, weights, bias, "l2")[1]
    adv = np.asarray(fab.fab_targeted(lambda v: tf.cast(model(v), tf.float16), x, labels, norm="l2", eps=2.0,
                                      n_iter=20))
    assert np.all(np.argmax(model(adv).numpy(), 1) != labels)
    assert np.all(perturbation_norms(x, adv, "l2") <= 2.0 + 1e-6)


@pytest.mark.parametrize("settings,message", [
    (dict(norm="l1"), "norm must be 'linf' or 'l2'"),
    (dict(eps=0.0), "eps must be a positive finite number"),
    (dict(eps=float("inf")), "eps must be a positive finite number"),
    (dict(n_iter=0), "n_iter must be an int >= 1"),
    (dict(n_iter=2.5), "n_iter must be an int >= 1"),
    (dict(n_target_classes=0), "n_target_classes must be an int >= 1"),
    (dict(alpha_max=1.5), "alpha_max must be in"),
    (dict(eta=0.0), "eta .* must be a positive finite number"),
    (dict(beta=0.0), "beta .* must be in"),
])
def test_bad_settings_raise_config_errors(settings, message):
    images, labels = brightness_task(2)
    with pytest.raises(ConfigError, match=message):
        fab.fab_targeted(lambda v: v, images, labels, **{"norm": "linf", "eps": 0.1, **settings})


def test_images_and_labels_must_match():
    images, labels = brightness_task(2)
    for x, y in ((images[0], labels), (images, labels[:1])):
        with pytest.raises(ConfigError, match="images \\[N, H, W, C\\] and one label each"):
            fab.fab_targeted(lambda v: v, x, y, norm="linf", eps=0.1)
