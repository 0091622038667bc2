import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv import savedmodel, universal_attacks
from tfadv.budgets import constrain, per_example_norm
from tfadv.models import UniversalPerturbation, build_classifier, unet
from tfadv.trainers import PerturbationTrainer

from conftest import brightness_task


@pytest.fixture(scope="module")
def task():
    """Synthetic brightness task and a small CNN that solves it."""
    keras.utils.set_random_seed(0)
    x, y = brightness_task(256)
    model = build_classifier("small_cnn", filters=[8, 16])
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=10, verbose=0)
    model.trainable = False
    return x, y, model


def universal(norm="l2", eps=2.5, seed=3):
    return UniversalPerturbation(unet(filters=4, batch_norm=False), norm, eps, noise_seed=seed)


def test_the_same_u_is_added_to_every_image_within_budget():
    model = universal()
    x = tf.random.uniform((5, 28, 28, 1), seed=1)
    u = model.perturbation()
    assert u.shape == (1, 28, 28, 1)
    assert float(per_example_norm(u, "l2")[0]) == pytest.approx(2.5, rel=1e-4)
    x_hat = model(x)
    np.testing.assert_allclose(x_hat, tf.clip_by_value(x + u, 0, 1), atol=1e-6)
    assert float(tf.reduce_max(per_example_norm(x_hat - x, "l2"))) <= 2.5


def test_noise_is_fixed_by_the_seed_and_saved_with_the_model(tmp_path):
    a, b, c = universal(seed=7), universal(seed=7), universal(seed=8)
    np.testing.assert_array_equal(a.noise.numpy(), b.noise.numpy())
    assert not np.allclose(a.noise.numpy(), c.noise.numpy())
    assert a.noise.numpy().min() >= 0 and a.noise.numpy().max() <= 1
    a(tf.zeros((1, 28, 28, 1)))
    a.save(tmp_path / "u.keras")
    reloaded = keras.saving.load_model(tmp_path / "u.keras")
    np.testing.assert_array_equal(reloaded.noise.numpy(), a.noise.numpy())
    np.testing.assert_allclose(reloaded.perturbation(), a.perturbation(), atol=1e-6)


def test_trainer_trains_the_generator_not_the_noise(task, tmp_path):
    x, y, classifier = task
    model = universal("linf", 0.25)
    trainer = PerturbationTrainer(model, classifier, loss="untargeted")
    trainer(x[:1])
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    noise = model.noise.numpy().copy()
    history = trainer.fit(x, y, batch_size=32, epochs=4, verbose=0)
    np.testing.assert_array_equal(model.noise.numpy(), noise)
    assert history.history["adv_accuracy"][-1] < history.history["clean_accuracy"][-1] - 0.3, history.history
    assert max(history.history["linf_max"]) <= 0.25
    savedmodel.write_perturbation(str(tmp_path / "sm"), model, (28, 28, 1))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(loaded.perturbation(), model.perturbation(), atol=1e-6)
    np.testing.assert_allclose(loaded.serve(x[:8]), model(x[:8]), atol=1e-6)


@pytest.mark.parametrize("norm,eps", [("l2", 2.5), ("linf", 0.2)])
def test_baselines_stay_in_budget_and_fool(task, norm, eps):
    x, y, classifier = task
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    u_sgd = universal_attacks.universal_sgd(classifier, ds, eps=eps, norm=norm, epochs=3, learning_rate=0.05)
    u_uap, history = universal_attacks.universal_iterative(classifier, ds, eps=eps, norm=norm, max_passes=1)
    for u in (u_sgd, u_uap):
        assert u.shape == (1, 28, 28, 1)
        assert float(per_example_norm(u, norm)[0]) <= eps
    # the recorded fooling rate is U's, and U fools (an unchanged zero U would record 0)
    assert len(history) == 1 and history[0] == pytest.approx(universal_attacks.fooling_rate(classifier, ds, u_uap))
    assert history[0] > 0.3, history
    assert universal_attacks.fooling_rate(classifier, ds, u_sgd) > 0.3


def test_deepfool_finds_small_boundary_crossings(task):
    x, y, classifier = task
    r = universal_attacks.deepfool(classifier, x[:32], num_classes=10)
    clean = np.argmax(classifier(x[:32]), -1)
    adv = np.argmax(classifier(np.clip(x[:32] + r, 0, 1)), -1)
    assert np.mean(adv != clean) > 0.9


@pytest.mark.parametrize("norm,eps", [("l2", 2.5), ("linf", 0.2)])
def test_iterative_uap_takes_the_eager_deepfool_steps(task, norm, eps):
    """The compiled per-batch step of universal_iterative = deepfool's pushes projected one image at a time.

    DeepFool walks images onto decision boundaries, so float32 rounding (the compiled step takes the K class
    gradients as one batch of B*K copies, the eager one class at a time) can flip a later step: the CI machine's
    kernels diverged by 0.012. The classifier here computes in float64 and hands float32 logits back, so both
    paths see the same numbers and any difference left is the steps themselves."""
    x, y, classifier32 = task
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        classifier64 = build_classifier("small_cnn", filters=[8, 16])
    finally:
        keras.config.set_dtype_policy(previous)
    classifier64.set_weights(classifier32.get_weights())

    def classifier(images):
        return tf.cast(classifier64(tf.cast(images, tf.float64)), tf.float32)

    ds = tf.data.Dataset.from_tensor_slices((x[:48], y[:48])).batch(16)  # three batches: U carries over
    u, _ = universal_attacks.universal_iterative(classifier, ds, eps=eps, norm=norm, max_passes=1)
    reference = tf.zeros((1, 28, 28, 1))
    for images, _ in ds:
        clean = tf.argmax(classifier(images), -1)
        adv = tf.argmax(classifier(tf.clip_by_value(images + reference, 0.0, 1.0)), -1)
        todo = tf.boolean_mask(images, clean == adv)
        if todo.shape[0]:
            pushes = universal_attacks.deepfool(classifier, tf.clip_by_value(todo + reference, 0.0, 1.0), num_classes=10)
            for push in tf.unstack(pushes):
                reference = constrain(reference + push[None], norm, eps, "project")
    assert float(tf.reduce_max(tf.abs(reference))) > 0  # the reference moved: the comparison means something
    np.testing.assert_allclose(u, reference, atol=1e-6)  # 0.0 measured


def test_linf_straight_through_fills_the_box_and_old_models_keep_thresholding(tmp_path):
    """New L-inf models put most pixels at +-eps (no saturated tanh needed); configs saved before the option keep
    "threshold", and those saved before the rename, which call it "scale", read as "threshold"."""
    keras.utils.set_random_seed(0)
    generator = unet(filters=4, batch_norm=False)
    through = UniversalPerturbation(generator, "linf", 0.1, noise_seed=3)
    scaled = UniversalPerturbation(generator, "linf", 0.1, noise_seed=3, linf_map="threshold")
    assert through.linf_map == "straight_through"
    u_through, u_scaled = np.abs(through.perturbation()), np.abs(scaled.perturbation())
    assert u_through.max() <= 0.1 and u_through.max() == pytest.approx(0.1, rel=1e-3)
    assert np.mean(u_through > 0.0999) > 0.2  # a fifth of the pixels or more at the budget
    assert u_through.mean() > 1.5 * u_scaled.mean(), (u_through.mean(), u_scaled.mean())
    # the gradient passes the clip: every pixel of U moves the loss, clipped ones included
    direction = tf.random.normal((1, 28, 28, 1), seed=2)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(through.perturbation() * direction)
    grads = tape.gradient(value, generator.trainable_variables)
    assert all(g is not None for g in grads) and sum(float(tf.norm(g)) for g in grads) > 0
    old_config = scaled.get_config()
    del old_config["linf_map"]
    assert UniversalPerturbation.from_config(old_config).linf_map == "threshold"
    renamed = UniversalPerturbation.from_config({**scaled.get_config(), "linf_map": "scale"})
    assert renamed.linf_map == "threshold"
    renamed.generator.set_weights(generator.get_weights())
    np.testing.assert_array_equal(renamed.perturbation(), scaled.perturbation())  # same noise seed and weights
    through(tf.zeros((1, 28, 28, 1)))
    through.save(tmp_path / "u.keras")
    reloaded = keras.saving.load_model(tmp_path / "u.keras")
    assert reloaded.linf_map == "straight_through"
    np.testing.assert_allclose(reloaded.perturbation(), through.perturbation(), atol=1e-6)
    with pytest.raises(Exception, match="linf_map must be one of"):
        UniversalPerturbation(unet(filters=4, batch_norm=False), "linf", 0.1, linf_map="sign")
