"""Universal adversarial perturbations by optimisation: the baselines of the seed's universal generator.

    u, fooling_rates = universal_iterative(classifier, dataset, eps=2.5, norm="l2")   # Moosavi-Dezfooli et al.
    u = universal_sgd(classifier, dataset, eps=2.5, norm="l2", epochs=5)              # SGD on U directly

One U [1, H, W, C] inside the eps-ball for every image of a dataset, unlike the per-image attacks of
:mod:`tfadv.attacks` (each image its own x_adv). :func:`deepfool` is the per-image step the iterative
algorithm accumulates; :func:`fooling_rate` what both algorithms are judged by.
"""

import tensorflow as tf

from tfadv.budgets import check_budget, constrain
from tfadv.inputs import check_images
from tfadv.losses import LOSSES, adversarial_loss, check_loss


def deepfool(classifier, x, *, num_classes: int, overshoot: float = 0.02, max_iter: int = 20):
    """DeepFool (Moosavi-Dezfooli et al. 2016), L2, batched: a small perturbation that crosses the nearest boundary.

    Returns r [B, H, W, C] such that the prediction on ``clip(x + r, 0, 1)``
    differs from the clean one for the examples it managed within ``max_iter``
    linearisation steps. The gradients of each class logit come from one
    backward pass per class (works for SavedModel functions too).
    """
    x = check_images(x, name="x")
    return _deepfool(classifier, x, num_classes, float(overshoot), int(max_iter))


def _deepfool_step(logits, grads, original, num_classes):
    """One DeepFool linearisation step per image: the smallest move onto the nearest linearised boundary.

    ``logits`` [B, K] and ``grads`` [B, K, ...] (d logit_k / d x) at the current images, ``original`` [B] the
    clean predictions. Returns the step [B, ...] (slightly past the boundary: +1e-4).
    """
    f = logits - tf.gather(logits, original, batch_dims=1)[:, None]  # [B, K], <= 0 while not fooled
    w = grads - tf.gather(grads, original, batch_dims=1)[:, None]
    w_norm = tf.sqrt(tf.reduce_sum(tf.square(tf.reshape(w, tf.concat([tf.shape(w)[:2], [-1]], 0))), -1))
    ratio = tf.abs(f) / (w_norm + 1e-8)
    ratio = tf.where(tf.one_hot(original, num_classes) > 0, tf.fill(tf.shape(ratio), float("inf")), ratio)
    nearest = tf.argmin(ratio, -1, output_type=tf.int32)
    w_k = tf.gather(w, nearest, batch_dims=1)
    scale = (tf.gather(ratio, nearest, batch_dims=1) + 1e-4) / (tf.gather(w_norm, nearest, batch_dims=1) + 1e-8)
    return tf.reshape(scale, tf.concat([tf.shape(w_k)[:1], tf.ones([tf.rank(w_k) - 1], tf.int32)], 0)) * w_k


def _deepfool(classifier, x, num_classes, overshoot, max_iter):
    original = tf.argmax(classifier(x), -1, output_type=tf.int32)
    shape = tf.concat([tf.shape(x)[:1], tf.ones([tf.rank(x) - 1], tf.int32)], 0)
    r_total = tf.zeros_like(x)
    for _ in range(max_iter):
        x_adv = tf.clip_by_value(x + (1 + overshoot) * r_total, 0.0, 1.0)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x_adv)
            logits = classifier(x_adv)
            per_class = [tf.reduce_sum(logits[:, k]) for k in range(num_classes)]
        active = tf.argmax(logits, -1, output_type=tf.int32) == original
        if not bool(tf.reduce_any(active)):
            break
        grads = tf.stack([tape.gradient(per_class[k], x_adv) for k in range(num_classes)], 1)  # [B, K, ...]
        del tape
        step = _deepfool_step(logits, grads, original, num_classes)
        r_total += tf.where(tf.reshape(active, shape), step, tf.zeros_like(step))
    return (1 + overshoot) * r_total


def fooling_rate(classifier, dataset, u) -> float:
    """The share of ``dataset``'s images whose prediction ``clip(x + u, 0, 1)`` changes."""
    fooled = total = 0
    for images, _ in dataset:
        clean = tf.argmax(classifier(images), -1)
        adv = tf.argmax(classifier(tf.clip_by_value(images + u, 0.0, 1.0)), -1)
        fooled += int(tf.reduce_sum(tf.cast(clean != adv, tf.int32)))
        total += int(images.shape[0])
    return fooled / max(total, 1)


def universal_iterative(classifier, dataset, *, eps: float, norm: str = "l2", num_classes: int = 10,
                        target_fooling_rate: float = 0.8, max_passes: int = 5, overshoot: float = 0.02,
                        max_iter: int = 20):
    """Universal adversarial perturbation (Moosavi-Dezfooli et al. 2017), mini-batch variant.

    Passes over ``dataset`` (batches of (images, labels)); for the images that
    the current U does not fool yet, DeepFool finds the minimal extra push at
    x + U, and U <- project(U + r_i) one image at a time. Stops when the
    fooling rate over ``dataset`` reaches ``target_fooling_rate`` or after
    ``max_passes``. The original computes each r_i at the U updated by the
    previous image; here each batch's r_i are computed at the batch's starting
    U (vectorised), then applied in turn.

    Each batch's DeepFool and its sequential projections run as one compiled
    graph (the same steps as :func:`deepfool`; the K class gradients come from
    one backward pass over the still-unfooled images repeated K times).

    Returns:
        (U [1, H, W, C] inside the eps-ball, list of fooling rates after each pass).
    """
    eps = check_budget(norm, eps)
    k = int(num_classes)

    def class_gradients(x_adv):
        """(logits [B, K], d logit_k / d x [B, K, ...]) from one forward/backward pass on K copies of x."""
        b = tf.shape(x_adv)[0]
        copies = tf.repeat(x_adv, k, axis=0)  # [B*K, ...]: copy j*K + c gives class c's gradient of image j
        with tf.GradientTape() as tape:
            tape.watch(copies)
            logits_rep = classifier(copies)
            picked = tf.reduce_sum(logits_rep * tf.tile(tf.eye(k, dtype=logits_rep.dtype), [b, 1]))
        grads = tape.gradient(picked, copies)
        grads = tf.reshape(grads, tf.concat([[b, k], tf.shape(x_adv)[1:]], 0))
        return tf.reshape(logits_rep, [b, k, k])[:, 0], grads

    @tf.function(reduce_retracing=True)
    def batch_update(u, x):
        """U after DeepFool on x (= clip(images + U), the not yet fooled ones) and the in-turn projections."""
        original = tf.argmax(classifier(x), -1, output_type=tf.int32)

        def body(i, r_total, active):  # active: the images x + (1 + overshoot) r_total has not pushed over yet
            x_adv = tf.clip_by_value(x + (1 + overshoot) * r_total, 0.0, 1.0)
            where = tf.cast(tf.where(active), tf.int32)  # [A, 1]: only these need the K gradients
            target = tf.boolean_mask(original, active)
            logits, grads = class_gradients(tf.boolean_mask(x_adv, active))
            step = _deepfool_step(logits, grads, target, k)
            r_total += tf.scatter_nd(where, step, tf.shape(r_total))
            x_adv = tf.clip_by_value(x + (1 + overshoot) * r_total, 0.0, 1.0)
            return i + 1, r_total, tf.argmax(classifier(x_adv), -1, output_type=tf.int32) == original

        # stopping once no image is active is what deepfool's break does (its later steps would add nothing)
        _, r_total, _ = tf.while_loop(lambda i, r, active: tf.logical_and(i < max_iter, tf.reduce_any(active)),
                                      body, (tf.constant(0), tf.zeros_like(x), tf.ones_like(original, tf.bool)))
        pushes = (1 + overshoot) * r_total
        return tf.foldl(lambda acc, push: constrain(acc + push[None], norm, eps, "project"), pushes,
                        initializer=u)

    u = None
    history = []
    for _ in range(max_passes):
        for images, _ in dataset:
            if u is None:
                u = tf.zeros((1,) + tuple(images.shape[1:]))
            clean = tf.argmax(classifier(images), -1)
            adv = tf.argmax(classifier(tf.clip_by_value(images + u, 0.0, 1.0)), -1)
            todo = tf.boolean_mask(images, clean == adv)
            if not todo.shape[0]:
                continue
            u = batch_update(u, tf.clip_by_value(todo + u, 0.0, 1.0))
        history.append(fooling_rate(classifier, dataset, u))
        if history[-1] >= target_fooling_rate:
            break
    return u, history


def universal_sgd(classifier, dataset, *, eps: float, norm: str = "l2", epochs: int = 5,
                  learning_rate: float = 0.01, loss: str = "untargeted", target_class: int | None = None,
                  loss_settings: dict | None = None):
    """The simple baseline: one variable U trained with Adam on the adversarial loss (``loss``, with its own
    ``loss_settings``, e.g. ``{"kappa": 1.0}`` for cw), projected after each step.

    Returns U [1, H, W, C] inside the eps-ball.
    """
    eps = check_budget(norm, eps)
    check_loss(loss, target_class)
    loss_settings = LOSSES[loss].complete(loss_settings)
    u, optimizer, step = None, None, None
    for _ in range(epochs):
        for images, labels in dataset:
            if u is None:
                u = tf.Variable(tf.zeros((1,) + tuple(images.shape[1:])))
                import keras

                optimizer = keras.optimizers.Adam(learning_rate)

                @tf.function(reduce_retracing=True)
                def step(images, labels):
                    clean_logits = classifier(images) if LOSSES[loss].needs_clean_logits else None
                    with tf.GradientTape() as tape:
                        logits = classifier(tf.clip_by_value(images + u, 0.0, 1.0))
                        value = tf.reduce_mean(adversarial_loss(loss, logits, labels, clean_logits, target_class,
                                                                settings=loss_settings))
                    optimizer.apply([tape.gradient(value, u)], [u])
                    u.assign(constrain(u, norm, eps, "project"))

            step(images, labels)
    return tf.convert_to_tensor(u)
