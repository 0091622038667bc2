import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv import attacks, export
from tfadv.budgets import per_example_norm
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
    export.write_perturbation(str(tmp_path / "sm"), model, (28, 28, 1))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(loaded.perturbation(), model.perturbation(), atol=1e-6)
    np.testing.assert_allclose(loaded.serve(x[:8]), model(x[:8]), atol=1e-6)


@pytest.mark.parametrize("norm,eps", [("l2", 2.5), ("linf", 0.2)])
def test_baselines_stay_in_budget_and_fool(task, norm, eps):
    x, y, classifier = task
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    u_sgd = attacks.universal_sgd(classifier, ds, eps=eps, norm=norm, epochs=3, learning_rate=0.05)
    u_uap, history = attacks.universal_iterative(classifier, ds, eps=eps, norm=norm, max_passes=1)
    for u in (u_sgd, u_uap):
        assert u.shape == (1, 28, 28, 1)
        assert float(per_example_norm(u, norm)[0]) <= eps
    # the recorded fooling rate is U's, and U fools (an unchanged zero U would record 0)
    assert len(history) == 1 and history[0] == pytest.approx(attacks._fooling_rate(classifier, ds, u_uap))
    assert history[0] > 0.3, history
    assert attacks._fooling_rate(classifier, ds, u_sgd) > 0.3


def test_deepfool_finds_small_boundary_crossings(task):
    x, y, classifier = task
    r = attacks.deepfool(classifier, x[:32], num_classes=10)
    clean = np.argmax(classifier(x[:32]), -1)
    adv = np.argmax(classifier(np.clip(x[:32] + r, 0, 1)), -1)
    assert np.mean(adv != clean) > 0.9
