"""Keras callbacks shared by tfadv's training runs: TensorBoard, image grids (TensorBoard and PNG), divergence."""

import math
import os
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tfadv.data.images import write_png
from tfadv.errors import TrainingDivergedError

NONFINITE_METRIC = "generator_nonfinite"  # trainers with a generator report the non-finite entries of its raw output


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback whose epoch summaries always land.

    With an integer ``update_freq`` Keras gates every summary written during
    ``fit`` with ``record_if(step % update_freq == 0)`` of the last batch, so the
    epoch scalars (train and validation), and the image grids other callbacks
    write, were recorded only when an epoch ended on a multiple of it.
    Batch-level scalars keep their frequency.
    """

    def on_epoch_end(self, epoch, logs=None):
        with tf.summary.record_if(True):
            super().on_epoch_end(epoch, logs)

    def on_test_end(self, logs=None):
        with tf.summary.record_if(True):
            super().on_test_end(logs)


class FailOnNonFinite(keras.callbacks.TerminateOnNaN):
    """Stops ``fit`` with :class:`TrainingDivergedError` when a loss or a generator's raw output is NaN or Inf.

    A generator gone NaN is invisible in the loss of a budgeted attack: the
    budget zeroes non-finite deltas, so x_hat = x and training would go on
    (and export) an identity map. Trainers with a generator report the count
    of its non-finite outputs as ``generator_nonfinite``. Raising (rather than
    Keras' quiet stop) keeps the run from saving a model or metrics.json; the
    run folder keeps its last epoch's backup.
    """

    def __init__(self):
        super().__init__(raise_error=True)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        where = f"epoch {self._epoch + 1}, batch {batch + 1}"
        nonfinite = logs.get(NONFINITE_METRIC)
        if nonfinite is not None and float(np.max(nonfinite)) > 0:
            raise TrainingDivergedError(
                f"Training diverged at {where}: the generator's raw output holds {int(np.max(nonfinite))} NaN/Inf "
                "values (its budget would turn them into a zero perturbation). Nothing was saved; lower the "
                "learning rate.")
        for name, value in logs.items():
            if name.endswith("loss") and not math.isfinite(float(np.max(value))):
                raise TrainingDivergedError(f"Training diverged at {where}: {name} is {float(np.max(value))}. "
                                            "Nothing was saved; lower the learning rate.")


def image_grid(images, cols: int = 8) -> np.ndarray:
    """Tiles a batch [N, H, W, C] of [0, 1] images into one image [rows*H, cols*W, C] (1 px gaps)."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"image_grid needs a non-empty batch [N, H, W, C]; got shape {images.shape}.")
    n, h, w, c = images.shape
    cols = min(cols, n)
    rows = -(-n // cols)
    grid = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1, c), np.float32)
    for i, image in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * (h + 1): r * (h + 1) + h, q * (w + 1): q * (w + 1) + w] = image
    return grid


class ImageGridLogger(keras.callbacks.Callback):
    """Writes image grids to TensorBoard (``<log_dir>/images``) and as PNG files, every few epochs.

    Args:
        log_dir: TensorBoard log folder of the run.
        grids_fn: ``grids_fn(model) -> {name: images [N, H, W, C] in [0, 1]}`` (tiled into a grid) or
            ``{name: figure [H, W, C]}`` (written as it is, e.g. from ``tfadv.figures``).
        png_dir: folder for ``<name>_epoch<NNN>.png`` files (None: TensorBoard only).
        every_n_epochs: how often to write.
    """

    def __init__(self, log_dir: str, grids_fn: Callable, png_dir: str | None = None, every_n_epochs: int = 1):
        super().__init__()
        self.grids_fn, self.png_dir, self.every_n_epochs = grids_fn, png_dir, every_n_epochs
        self._writer = tf.summary.create_file_writer(os.path.join(log_dir, "images"))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        self.write(epoch + 1)

    def write(self, step: int):
        grids = {name: images if np.ndim(images) == 3 else image_grid(images)
                 for name, images in self.grids_fn(self.model).items()}
        with self._writer.as_default(), tf.summary.record_if(True):  # not gated by TensorBoard's update_freq
            for name, grid in grids.items():
                tf.summary.image(name, grid[None], step=step)
        self._writer.flush()
        if self.png_dir:
            os.makedirs(self.png_dir, exist_ok=True)
            for name, grid in grids.items():
                write_png(os.path.join(self.png_dir, f"{name}_epoch{step:03d}.png"), grid)
