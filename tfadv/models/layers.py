"""Serializable layers shared by tfadv's networks."""

import keras
from keras import ops

from tfadv.errors import ConfigError

_PACKAGE = "tfadv"

# Per-channel constants of keras.applications' preprocess_input modes, for RGB input.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ImagePreprocess(keras.layers.Layer):
    """Maps [0, 1] images to what a network expects, inside the model.

    Every tfadv classifier takes [0, 1] images; this layer is where each one
    applies its own normalisation, so exported models need no outside code.

    Modes:
        "standardize": ``(x - mean) / std`` with scalar or per-channel constants.
        "caffe": RGB -> BGR, scale to [0, 255], subtract the ImageNet mean
            (keras.applications VGG16 / ResNet50).
        "tf": scale to [-1, 1] (keras.applications InceptionV3).
        "torch": ImageNet mean / std on [0, 1] RGB.
    """

    MODES = ("standardize", "caffe", "tf", "torch")

    def __init__(self, mode="standardize", mean=0.5, std=0.5, **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ConfigError(f"ImagePreprocess mode must be one of {self.MODES}. Received: mode={mode!r}")
        if mode == "standardize" and any(s <= 0 for s in _as_tuple(std)):
            raise ConfigError(f"ImagePreprocess std must be > 0. Received: std={std!r}")
        self.mode, self.mean, self.std = mode, mean, std

    def call(self, images):
        if self.mode == "standardize":
            return (images - ops.convert_to_tensor(self.mean, images.dtype)) / ops.convert_to_tensor(
                self.std, images.dtype)
        if self.mode == "caffe":
            bgr = ops.flip(images, axis=-1) * 255.0
            return bgr - ops.convert_to_tensor(_CAFFE_MEAN_BGR, images.dtype)
        if self.mode == "tf":
            return images * 2.0 - 1.0
        return (images - ops.convert_to_tensor(_TORCH_MEAN, images.dtype)) / ops.convert_to_tensor(
            _TORCH_STD, images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "mean": self.mean, "std": self.std}


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HorizontalFlip(keras.layers.Layer):
    """Mirrors NHWC images left-right (for test-time flip averaging)."""

    def call(self, images):
        return ops.flip(images, axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape
