"""tfadv: generative adversarial perturbations and arbitrary style transfer in Keras 3.

Images are float32 NHWC in [0, 1] at every public boundary, and perturbation
norms are measured on that scale.

tfadv runs on the TensorFlow backend of Keras 3 only (its trainers use
``tf.GradientTape``, ``tf.data`` and SavedModel export). Importing it under
another backend fails at once with a message that says how to fix it.
"""

import os as _os

_BACKEND = _os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if _BACKEND != "tensorflow":
    raise ImportError(
        f"tfadv needs the TensorFlow backend of Keras, but KERAS_BACKEND={_BACKEND!r}. "
        "Unset KERAS_BACKEND or set KERAS_BACKEND=tensorflow before importing tfadv."
    )

import keras as _keras  # noqa: E402  (the backend must be chosen first)

if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        "tfadv needs the TensorFlow backend of Keras, but Keras was already imported "
        f"with the {_keras.backend.backend()!r} backend. Import tfadv first, or set "
        "KERAS_BACKEND=tensorflow."
    )

__version__ = "0.1.0"
