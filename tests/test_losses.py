"""Attack losses keep a gradient at every margin: no flat region where a confident classifier stops the attack."""

import numpy as np
import pytest
import tensorflow as tf

from tfadv.losses import LOSSES, adversarial_loss


def confident_logits(margin, num_classes=10):
    """Logits [1, K] whose true class 3 leads every other class by ``margin`` (others spread over [0, 1])."""
    logits = np.linspace(0.0, 1.0, num_classes)
    logits[3] = margin + 1.0
    return logits[None]


def reference_untargeted(logits, label):
    """-log(1 - p_y) in float64 from s = sum_{j != y} exp(z_j - z_y): 1 - p_y = s / (1 + s)."""
    z = np.asarray(logits, np.float64)[0]
    s = np.sum(np.exp(np.delete(z, label) - z[label]))
    return np.log1p(1.0 / s)


def reference_gradient(logits, label):
    """d/dz of -log(1 - p_y) in float64: p_y for the true class, p_j - q_j (q: softmax of the others) otherwise."""
    z = np.asarray(logits, np.float64)[0]
    p = np.exp(z - z.max()) / np.sum(np.exp(z - z.max()))
    others = np.delete(z, label)
    q = np.insert(np.exp(others - others.max()) / np.sum(np.exp(others - others.max())), label, 0.0)
    return (p - q)[None]


@pytest.mark.parametrize("margin", [0.5, 5.0, 30.0, 100.0])
def test_untargeted_matches_float64_and_keeps_its_gradient(margin):
    logits = tf.constant(confident_logits(margin), tf.float32)
    labels = tf.constant([3])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = adversarial_loss("untargeted", logits, labels)
    gradient = tape.gradient(loss, logits).numpy()
    np.testing.assert_allclose(float(loss[0]), reference_untargeted(logits.numpy(), 3), rtol=1e-5)
    # loss = logsumexp(z) - logsumexp(z_others): d/dz_y = p_y (-> 1 when confident, never 0), d/dz_j = p_j - q_j.
    np.testing.assert_allclose(gradient, reference_gradient(logits.numpy(), 3), rtol=1e-4, atol=1e-7)
    assert gradient[0, 3] > 0.2 and np.all(gradient[0, np.arange(10) != 3] < 0), gradient


@pytest.mark.parametrize("kind", LOSSES)
def test_every_loss_has_a_finite_nonzero_gradient_at_margin_100(kind):
    logits = tf.constant(np.concatenate([confident_logits(100.0), confident_logits(30.0)]), tf.float32)
    labels = tf.constant([3, 3])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        target = 5 if kind == "targeted" else None
        clean = tf.roll(logits, 1, axis=1)  # a clean prediction other than x_hat's (trades_kl is 0 and flat at equal)
        loss = tf.reduce_sum(adversarial_loss(kind, logits, labels, clean_logits=clean, target_class=target))
    gradient = tape.gradient(loss, logits).numpy()
    assert np.all(np.isfinite(gradient)) and np.isfinite(float(loss))
    assert np.all(np.abs(gradient).sum(axis=1) > 0.5), (kind, gradient)


def test_untargeted_is_exact_in_float16_logits_too():
    logits = tf.constant(confident_logits(30.0), tf.float16)
    loss = adversarial_loss("untargeted", tf.cast(logits, tf.float32), tf.constant([3]))
    np.testing.assert_allclose(float(loss[0]), reference_untargeted(tf.cast(logits, tf.float64).numpy(), 3),
                               rtol=1e-5)
