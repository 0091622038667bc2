"""Building keras.applications networks with weights from the hub, a local file, or nowhere."""

import logging
import os

import keras

from tfadv.errors import ConfigError

log = logging.getLogger("tfadv.models")


def build_application(constructor: str, weights, random_warning: str, **kwargs) -> keras.Model:
    """``keras.applications.<constructor>(weights=..., **kwargs)`` with tfadv's three kinds of weights.

    Args:
        constructor: e.g. "VGG16".
        weights: "imagenet" (downloads: needs network), a path to a local
            weights file (loaded after building), or None (random; logs
            ``random_warning`` loudly, since nothing should pretend to be trained).
    """
    local_file = None
    if weights not in (None, "imagenet"):
        if not isinstance(weights, str) or not os.path.isfile(weights):
            raise ConfigError(f"weights must be 'imagenet', None, or an existing weights file. Received: {weights!r}")
        local_file, weights = weights, None
    if weights is None and local_file is None:
        log.warning(random_warning)
    model = getattr(keras.applications, constructor)(weights=weights, **kwargs)
    if local_file:
        model.load_weights(local_file)
        log.info("Loaded %s weights from %s.", constructor, local_file)
    return model
