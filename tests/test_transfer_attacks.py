"""tfadv.transfer_attacks: MI-FGSM, DI-FGSM and TI-DIM on a tiny CNN trained in the test (8x8 RGB, 4 classes)."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import require_art, require_eval

from tfadv import transfer_attacks
from tfadv.errors import ConfigError

SHAPE = (8, 8, 3)
CLASSES = 4


def quadrant_task(n, seed=0):
    """Images [n, 8, 8, 3] in [0, 1]: noise in [0, 0.5], plus 0.3 on the 4x4 quadrant that is the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    images = rng.uniform(0.0, 0.5, (n,) + SHAPE)
    for k, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        images[labels == k, r:r + 4, c:c + 4] += 0.3
    return images.astype(np.float32), labels


@pytest.fixture(scope="module")
def trained():
    """(model, images, labels): a small CNN fitted to the quadrant task (train accuracy near 1)."""
    import keras

    keras.utils.set_random_seed(0)
    images, labels = quadrant_task(512)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(CLASSES)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=8, batch_size=64, verbose=0)
    return model, images[:64], labels[:64]


def accuracy(model, images, labels) -> float:
    return float(np.mean(np.argmax(model(np.asarray(images)).numpy(), -1) == labels))


def edge_images(n=12, seed=1):
    """All-black, all-white, salt-and-pepper and uniform images: the box constraint binds on the first ones."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (n,) + SHAPE)
    images[0], images[1] = 0.0, 1.0
    images[2:6] = rng.integers(0, 2, (4,) + SHAPE)
    return images.astype(np.float32), rng.integers(0, CLASSES, n)


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.5)])
@pytest.mark.parametrize("attack", ["mi_fgsm", "di_fgsm"])
def test_every_image_stays_within_the_budget_and_the_box(trained, attack, norm, eps):
    model = trained[0]
    x, labels = edge_images()
    settings = {"diversity_prob": 1.0, "translation_kernel": 3, "seed": 3} if attack == "di_fgsm" else {}
    x_adv = getattr(transfer_attacks, attack)(model, x, labels, eps=eps, norm=norm, steps=5, step_size=eps,
                                              **settings)
    assert x_adv.dtype == tf.float32 and x_adv.shape == x.shape
    delta = x_adv.numpy().astype(np.float64) - x.astype(np.float64)
    flat = delta.reshape(len(x), -1)
    sizes = np.abs(flat).max(1) if norm == "linf" else np.linalg.norm(flat, axis=1)
    assert sizes.max() <= eps + 1e-6, sizes
    assert sizes.max() > 0.5 * eps  # it moved
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0


def test_without_momentum_or_diversity_both_are_the_basic_iterative_method(trained):
    model, x, labels = trained
    eps, alpha, steps = 0.1, 0.03, 5
    mi = transfer_attacks.mi_fgsm(model, x, labels, eps=eps, steps=steps, decay=0.0, step_size=alpha).numpy()
    di = transfer_attacks.di_fgsm(model, x, labels, eps=eps, steps=steps, decay=0.0, step_size=alpha,
                                  diversity_prob=0.0, seed=7).numpy()
    np.testing.assert_array_equal(di, mi)

    x_bim = tf.constant(x)
    for _ in range(steps):  # BIM (Kurakin et al. 2017): signed gradient ascent of the cross-entropy, projected
        with tf.GradientTape() as tape:
            tape.watch(x_bim)
            value = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=model(x_bim)))
        x_bim = x_bim + alpha * tf.sign(tape.gradient(value, x_bim))
        x_bim = tf.clip_by_value(x + tf.clip_by_value(x_bim - x, -eps, eps), 0.0, 1.0)
    # tfadv's projection keeps eps * 1e-5 (plus 2**-24) inside the ball: 1e-6 here
    np.testing.assert_allclose(mi, x_bim.numpy(), atol=2e-6, rtol=0)


def test_mi_fgsm_matches_arts_momentum_iterative_method(trained):
    """ART 1.20.1's MomentumIterativeMethod on a TensorFlowV2Classifier takes the TF v2 PGD path, whose momentum
    branch raises NotImplementedError (ART issue #2439); an identity NumPy preprocessor sends it down the NumPy
    path, which normalises by the L1 norm (tfadv: the mean absolute value, same steps). Measured: max abs pixel
    difference ~1e-6 (tfadv's projection margin), all predictions equal."""
    require_art()
    import keras
    from art.attacks.evasion import MomentumIterativeMethod
    from art.estimators.classification import TensorFlowV2Classifier
    from art.preprocessing.standardisation_mean_std import StandardisationMeanStd

    model, x, labels = trained
    art_model = TensorFlowV2Classifier(model, nb_classes=CLASSES, input_shape=SHAPE, clip_values=(0.0, 1.0),
                                       loss_object=keras.losses.CategoricalCrossentropy(from_logits=True),
                                       preprocessing_defences=[StandardisationMeanStd(0.0, 1.0)])
    assert not art_model.all_framework_preprocessing
    for decay, steps in ((1.0, 10), (0.5, 4)):
        ours = transfer_attacks.mi_fgsm(model, x, labels, eps=0.1, steps=steps, decay=decay, step_size=0.02).numpy()
        theirs = MomentumIterativeMethod(art_model, norm=np.inf, eps=0.1, eps_step=0.02, decay=decay,
                                         max_iter=steps, batch_size=len(x), verbose=False).generate(
            x, np.eye(CLASSES, dtype=np.float32)[labels])
        assert np.abs(ours - theirs).max() <= 1e-5, (decay, np.abs(ours - theirs).max())
        predicted = np.argmax(model(ours).numpy(), -1) == np.argmax(model(theirs).numpy(), -1)
        assert predicted.mean() >= 0.95


def test_ti_dim_is_seeded_refuses_even_kernels_and_fools_the_model(trained):
    model, x, labels = trained
    settings = {"eps": 0.15, "steps": 10, "diversity_prob": 1.0, "translation_kernel": 5}
    first = transfer_attacks.di_fgsm(model, x, labels, seed=1, **settings).numpy()
    again = transfer_attacks.di_fgsm(model, x, labels, seed=1, **settings).numpy()
    other = transfer_attacks.di_fgsm(model, x, labels, seed=2, **settings).numpy()
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.01
    with pytest.raises(ConfigError, match="translation_kernel"):
        transfer_attacks.di_fgsm(model, x, labels, **{**settings, "translation_kernel": 4})
    clean = accuracy(model, x, labels)
    assert clean >= 0.9
    assert accuracy(model, first, labels) <= clean - 0.3, (clean, accuracy(model, first, labels))
    assert accuracy(model, transfer_attacks.mi_fgsm(model, x, labels, eps=0.15), labels) <= clean - 0.3


def test_gaussian_kernel_is_tis_gkern():
    kernel = transfer_attacks.gaussian_kernel(5)
    assert kernel.shape == (5, 5) and kernel.sum() == pytest.approx(1.0) and kernel.argmax() == 12
    scipy_stats = require_eval("scipy.stats")
    pdf = scipy_stats.norm.pdf(np.linspace(-3, 3, 5))
    np.testing.assert_allclose(kernel, np.outer(pdf, pdf) / np.outer(pdf, pdf).sum(), rtol=1e-6)


@pytest.mark.parametrize("settings,named", [
    ({"norm": "l1"}, "norm"), ({"eps": 0.0}, "eps"), ({"eps": -1.0}, "eps"), ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"), ({"decay": -0.1}, "decay"), ({"step_size": 0.0}, "step_size"),
    ({"diversity_prob": 1.5}, "diversity_prob"), ({"diversity_prob": -0.1}, "diversity_prob"),
    ({"translation_kernel": 2}, "translation_kernel"), ({"translation_kernel": -3}, "translation_kernel"),
    ({"resize_max": 8}, "resize_max"),
])
def test_bad_settings_raise_a_one_line_config_error_naming_the_setting(settings, named):
    x, labels = edge_images()
    attacks = [transfer_attacks.di_fgsm]
    if not any(k in settings for k in ("diversity_prob", "translation_kernel", "resize_max")):
        attacks.append(transfer_attacks.mi_fgsm)
    for attack in attacks:
        with pytest.raises(ConfigError) as error:
            attack(lambda images: images, x, labels, **{"eps": 0.1, **settings})
        assert named in str(error.value) and "\n" not in str(error.value)
