"""Building keras.applications networks with weights from the hub, a local file, or nowhere."""

import logging
import os
import re

import keras

from tfadv.errors import ConfigError, DataUnavailableError

log = logging.getLogger("tfadv.models")


def build_application(constructor: str, weights, random_warning: str, setting: str = "model_kwargs.weights",
                      **kwargs) -> keras.Model:
    """``keras.applications.<constructor>(weights=..., **kwargs)`` with tfadv's three kinds of weights.

    Args:
        constructor: e.g. "VGG16".
        weights: "imagenet" (downloads: needs network, unless Keras already
            cached the file in ~/.keras/models), a path to a local weights file
            (loaded after building), or None (random; logs ``random_warning``
            loudly, since nothing should pretend to be trained).
        setting: the config field holding ``weights``, named by the error
            raised when the ImageNet weights cannot be downloaded.
    """
    local_file = None
    if weights not in (None, "imagenet"):
        if not isinstance(weights, str) or not os.path.isfile(weights):
            raise ConfigError(f"weights must be 'imagenet', None, or an existing weights file. Received: {weights!r}")
        local_file, weights = weights, None
    if weights is None and local_file is None:
        log.warning(random_warning)
    try:
        model = getattr(keras.applications, constructor)(weights=weights, **kwargs)
    except (ValueError, TypeError):
        raise
    except Exception as e:  # noqa: BLE001 - keras.utils.get_file raises a bare Exception when offline
        if weights != "imagenet":
            raise
        raise DataUnavailableError(_download_failure(constructor, setting, str(e))) from None
    if local_file:
        model.load_weights(local_file)
        log.info("Loaded %s weights from %s.", constructor, local_file)
    return model


def _download_failure(constructor: str, setting: str, error: str) -> str:
    """One line: why Keras could not fetch the ImageNet weights, and the two ways to go on without them."""
    reason = error.splitlines()[0].split(" -- ")[-1][:160] if error else "no reason given"
    found = re.search(r"/([^/\s:]+\.h5)", error)
    file_name = found.group(1) if found else "weights.h5"
    return (f"Cannot download the ImageNet weights of {constructor} ({reason}). Ways out: a local copy of "
            f"{file_name} (--set {setting}=/path/to/{file_name}, or put it in ~/.keras/models/), or random "
            f"weights for a smoke run (--set {setting}=null: the network is then untrained).")
