"""The image contract, checked at every entry point: a non-empty float NHWC batch, finite, in [0, 1].

``check_images`` is called by the zoo's served models (:func:`tfadv.zoo.load`),
the attacks and the evaluation helpers, so a wrong batch fails at once with
an :class:`~tfadv.errors.InputError` naming the problem (rank, shape, channel
count, dtype, emptiness, NaN/inf, range) instead of a traceback from inside
TensorFlow. Inside a ``tf.function`` the value checks become
``tf.debugging`` assertions with the same messages; exported SavedModels
carry those assertions in their ``serve`` graph (:func:`guarded`).
"""

import numpy as np
import tensorflow as tf

from tfadv.errors import InputError


def _static_checks(images, shape, name):
    if not images.dtype.is_floating:
        hint = " (uint8 pixels: divide by 255 first)" if images.dtype == tf.uint8 else ""
        raise InputError(f"{name} must be float images in [0, 1]; got dtype {images.dtype.name}{hint}.")
    rank = images.shape.rank
    if rank != 4:
        hint = " (a single image: add a batch dimension, e.g. images[None])" if rank == 3 else ""
        raise InputError(f"{name} must be a batch [B, H, W, C] (rank 4); got shape {images.shape}{hint}.")
    if shape is not None:
        expected = tuple(int(d) for d in shape)
        got = tuple(images.shape[1:])
        if got[-1] is not None and got[-1] != expected[-1]:
            raise InputError(f"{name} must have {expected[-1]} channel(s); got {got[-1]} (shape {images.shape}).")
        if any(g is not None and g != e for g, e in zip(got[:2], expected[:2])):
            raise InputError(f"{name} must be {expected[0]}x{expected[1]} pixels; got {got[0]}x{got[1]} "
                             f"(shape {images.shape}).")
    if images.shape[0] == 0:
        raise InputError(f"{name} is an empty batch (shape {images.shape}).")


def check_images(images, shape=None, name: str = "images") -> tf.Tensor:
    """Returns ``images`` as a float32 tensor after checking the contract; raises InputError otherwise.

    Args:
        images: array or tensor [B, H, W, C].
        shape: the expected (H, W, C), or None to accept any size.
        name: what the message calls the argument.
    """
    if not isinstance(images, (tf.Tensor, tf.Variable)):
        try:
            images = tf.convert_to_tensor(np.asarray(images))
        except (ValueError, TypeError) as e:
            raise InputError(f"{name} cannot be read as an array of images ({e}).") from None
    _static_checks(images, shape, name)
    images = tf.cast(images, tf.float32)
    if not tf.executing_eagerly():
        return _asserted(images, name)
    if tf.size(images) == 0:
        raise InputError(f"{name} is an empty batch (shape {images.shape}).")
    finite = tf.math.is_finite(images)
    if not bool(tf.reduce_all(finite)):
        bad = int(tf.reduce_sum(tf.cast(~finite, tf.int32)))
        raise InputError(f"{name} contain {bad} NaN or infinite value(s).")
    low, high = float(tf.reduce_min(images)), float(tf.reduce_max(images))
    if low < 0.0 or high > 1.0:
        hint = (" (0-255 pixels: divide by 255)" if 2.0 <= high <= 255.0 else
                " (just above 1, as antialiased resizing leaves at sharp edges: clip to [0, 1])" if high > 1.0 else "")
        raise InputError(f"{name} must lie in [0, 1]; got values in [{low:g}, {high:g}]{hint}.")
    return images


def _asserted(images, name):
    """``images`` behind the in-graph checks, run in order: a NaN batch is reported as NaN, not as out of range."""
    with tf.control_dependencies([tf.debugging.assert_positive(tf.shape(images)[0],
                                                               message=f"{name} is an empty batch.")]):
        images = tf.debugging.assert_all_finite(images, message=f"{name} contain NaN or infinite values.")
    range_checks = [
        tf.debugging.assert_greater_equal(images, 0.0, message=f"{name} must lie in [0, 1]: values below 0.",
                                          summarize=3),
        tf.debugging.assert_less_equal(images, 1.0, message=f"{name} must lie in [0, 1]: values above 1 "
                                       "(0-255 pixels: divide by 255; resized images: clip to [0, 1]).",
                                       summarize=3),
    ]
    with tf.control_dependencies(range_checks):
        return tf.identity(images)


def guarded(fn, names=("images",)):
    """``fn`` with in-graph checks of each image argument: what exported ``serve`` endpoints run.

    Shape, rank and dtype are fixed by the endpoint's input signature; the
    guard adds emptiness, NaN/inf and [0, 1] checks (``InvalidArgumentError``
    carrying the messages of :func:`check_images`).
    """

    def serve(*tensors):
        return fn(*[_asserted(t, n) for t, n in zip(tensors, names)])

    return serve
