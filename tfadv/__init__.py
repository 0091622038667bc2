"""tfadv: generative adversarial perturbations and arbitrary style transfer in Keras 3.

Images are float32 NHWC in [0, 1] at every public boundary, and perturbation
norms are measured on that scale.

tfadv runs on the TensorFlow backend of Keras 3 only (its trainers use
``tf.GradientTape``, ``tf.data`` and SavedModel export). Importing it under
another backend fails at once with a message that says how to fix it.
"""

import os as _os
import sys as _sys

_BACKEND = _os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if _BACKEND != "tensorflow":
    raise ImportError(
        f"tfadv needs the TensorFlow backend of Keras, but KERAS_BACKEND={_BACKEND!r}. "
        "Unset KERAS_BACKEND or set KERAS_BACKEND=tensorflow before importing tfadv."
    )

# Keras is not imported here: importing tfadv (and its light modules: config, errors, cli) stays cheap, so the tools'
# --help answers without loading TensorFlow. Keras, imported later, reads KERAS_BACKEND (set above; it overrides
# keras.json). Only a Keras imported before tfadv can have another backend: check that one now.
_keras = _sys.modules.get("keras")
if _keras is not None and hasattr(_keras, "backend") and _keras.backend.backend() != "tensorflow":
    raise ImportError(
        "tfadv needs the TensorFlow backend of Keras, but Keras was already imported "
        f"with the {_keras.backend.backend()!r} backend. Import tfadv first, or set "
        "KERAS_BACKEND=tensorflow."
    )

__version__ = "0.1.0"
