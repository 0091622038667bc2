"""Target classifiers: the frozen CNNs that attacks are trained against.

Every builder returns a functional ``keras.Model`` that takes float32 images in
[0, 1] (NHWC), does its own preprocessing inside (``ImagePreprocess``) and
returns logits. Builders are found by name in ``CLASSIFIERS``:

    model = build_classifier("small_cnn", input_shape=(28, 28, 1), num_classes=10)
"""

import os

import keras
from keras import layers

from tfadv.errors import ConfigError, summary
from tfadv.models.applications import build_application
from tfadv.models.layers import HorizontalFlip, ImagePreprocess
from tfadv.registry import Registry


def _check_shape(input_shape, num_classes, min_side=1):
    if (not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3
            or not all(isinstance(d, int) and d > 0 for d in input_shape)):
        raise ConfigError(f"input_shape must be (height, width, channels) of positive ints. "
                          f"Received: input_shape={input_shape!r}")
    if min(input_shape[:2]) < min_side:
        raise ConfigError(f"input_shape {tuple(input_shape)} is too small for this network "
                          f"(needs height and width >= {min_side}).")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an int >= 2. Received: num_classes={num_classes!r}")
    return tuple(input_shape)


def _conv_bn_relu(x, filters, kernel_size=3, strides=1, name=None):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def small_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(32, 64, 128), convs_per_stage=2,
              dense_units=0, dropout=0.0, mean=0.5, std=0.5, head="gap", stem_batch_norm=True, name="small_cnn"):
    """A VGG-style CNN for small images: stages of 3x3 conv(-BN)-ReLU with 2x2 max-pooling between them.

    Args:
        input_shape: (H, W, C) of the [0, 1] input images.
        num_classes: number of logits.
        filters: one entry per stage: an int (``convs_per_stage`` convs of that
            width) or a list of widths (one conv each). The spatial size halves
            between stages.
        convs_per_stage: convs per stage for int entries of ``filters``.
        dense_units: width of a hidden dense-BN-ReLU layer before the logits (0: none).
        dropout: dropout rate before the hidden layer and before the logits (0: none).
        mean, std: input standardisation constants (scalar or per channel).
        head: "gap" (global average pooling) or "flatten" (2x2 max-pool, then flatten).
        stem_batch_norm: batch norm on the first conv (off saves CPU time at full resolution).
    """
    input_shape = _check_shape(input_shape, num_classes)
    stages = [[f] * convs_per_stage if isinstance(f, int) else list(f) for f in (filters or [])]
    if not stages or not all(w and all(isinstance(f, int) and f > 0 for f in w) for w in stages):
        raise ConfigError(f"filters must be a non-empty list of positive ints or lists of them. "
                          f"Received: filters={filters!r}")
    if not isinstance(convs_per_stage, int) or convs_per_stage < 1:
        raise ConfigError(f"convs_per_stage must be an int >= 1. Received: convs_per_stage={convs_per_stage!r}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")
    if head not in ("gap", "flatten"):
        raise ConfigError(f"head must be 'gap' or 'flatten'. Received: head={head!r}")
    inputs = keras.Input(input_shape, name="images")
    x = ImagePreprocess("standardize", mean=mean, std=std, name="preprocess")(inputs)
    for stage, widths in enumerate(stages):
        if stage:
            x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
        for i, width in enumerate(widths):
            if stage == 0 and i == 0 and not stem_batch_norm:
                x = layers.Conv2D(width, 3, padding="same", activation="relu", name="stem")(x)
            else:
                x = _conv_bn_relu(x, width, name=f"stage{stage}_{i}")
    if head == "gap":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        x = layers.Flatten(name="flatten")(layers.MaxPooling2D(2, name="head_pool")(x))
    if dense_units:
        if dropout:
            x = layers.Dropout(dropout, name="hidden_dropout")(x)
        x = layers.Dense(dense_units, use_bias=False, name="hidden")(x)
        x = layers.ReLU(name="hidden_relu")(layers.BatchNormalization(name="hidden_bn")(x))
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def resnet_cifar(input_shape=(32, 32, 3), num_classes=10, depth=20, width=16,
                 mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), name="resnet_cifar"):
    """ResNet v1 for CIFAR (He et al. 2016, sec. 4.2): depth = 6n + 2, three stages of width w, 2w, 4w."""
    input_shape = _check_shape(input_shape, num_classes, min_side=8)
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ConfigError(f"depth must be 6n + 2 (20, 32, 44, 56, ...). Received: depth={depth!r}")
    blocks = (depth - 2) // 6
    inputs = keras.Input(input_shape, name="images")
    x = ImagePreprocess("standardize", mean=mean, std=std, name="preprocess")(inputs)
    x = _conv_bn_relu(x, width, name="stem")
    for stage in range(3):
        filters = width * 2**stage
        for block in range(blocks):
            strides = 2 if stage and not block else 1
            prefix = f"stage{stage}_block{block}"
            y = _conv_bn_relu(x, filters, strides=strides, name=f"{prefix}_a")
            y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{prefix}_b_conv")(y)
            y = layers.BatchNormalization(name=f"{prefix}_b_bn")(y)
            if strides != 1 or x.shape[-1] != filters:
                x = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{prefix}_proj")(x)
                x = layers.BatchNormalization(name=f"{prefix}_proj_bn")(x)
            x = layers.ReLU(name=f"{prefix}_out")(layers.Add(name=f"{prefix}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def mlp(input_shape=(28, 28, 1), num_classes=10, units=(512, 256), dropout=0.2, mean=0.5, std=0.5, name="mlp"):
    """A multilayer perceptron on the flattened image: dense-BN-ReLU layers of ``units``, dropout, logits.

    No convolution and no weight sharing: the family of the transfer zoo that sees an image least like a CNN.
    """
    input_shape = _check_shape(input_shape, num_classes)
    if not units or not all(isinstance(u, int) and u > 0 for u in units):
        raise ConfigError(f"units must be a non-empty list of positive ints. Received: units={units!r}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")
    inputs = keras.Input(input_shape, name="images")
    x = layers.Flatten(name="flatten")(ImagePreprocess("standardize", mean=mean, std=std, name="preprocess")(inputs))
    for i, width in enumerate(units):
        x = layers.Dense(width, use_bias=False, name=f"dense{i}")(x)
        x = layers.ReLU(name=f"dense{i}_relu")(layers.BatchNormalization(name=f"dense{i}_bn")(x))
        if dropout:
            x = layers.Dropout(dropout, name=f"dense{i}_dropout")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def mlp_mixer(input_shape=(28, 28, 1), num_classes=10, patch_size=4, dim=64, depth=4, token_units=64,
              channel_units=128, mean=0.5, std=0.5, name="mlp_mixer"):
    """MLP-Mixer (Tolstikhin et al. 2021): non-overlapping patches embedded to ``dim``, then ``depth`` blocks of a
    token-mixing MLP (across patches) and a channel-mixing MLP (across features), each pre-LayerNorm and residual,
    GELU inside; global average over patches, logits. Patches must tile the image.
    """
    input_shape = _check_shape(input_shape, num_classes)
    if not isinstance(patch_size, int) or patch_size < 1 or any(d % patch_size for d in input_shape[:2]):
        raise ConfigError(f"patch_size must be a positive int dividing the image's height and width "
                          f"{input_shape[:2]}. Received: patch_size={patch_size!r}")
    for key, value in {"dim": dim, "depth": depth, "token_units": token_units, "channel_units": channel_units}.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be a positive int. Received: {key}={value!r}")
    tokens = (input_shape[0] // patch_size) * (input_shape[1] // patch_size)
    inputs = keras.Input(input_shape, name="images")
    x = ImagePreprocess("standardize", mean=mean, std=std, name="preprocess")(inputs)
    x = layers.Conv2D(dim, patch_size, strides=patch_size, name="patch_embedding")(x)
    x = layers.Reshape((tokens, dim), name="tokens")(x)
    for block in range(depth):
        y = layers.Permute((2, 1), name=f"block{block}_transpose")(layers.LayerNormalization(
            name=f"block{block}_token_norm")(x))
        y = layers.Dense(token_units, activation="gelu", name=f"block{block}_token_hidden")(y)
        y = layers.Permute((2, 1), name=f"block{block}_transpose_back")(layers.Dense(
            tokens, name=f"block{block}_token_out")(y))
        x = layers.Add(name=f"block{block}_token_add")([x, y])
        y = layers.LayerNormalization(name=f"block{block}_channel_norm")(x)
        y = layers.Dense(channel_units, activation="gelu", name=f"block{block}_channel_hidden")(y)
        x = layers.Add(name=f"block{block}_channel_add")([x, layers.Dense(dim, name=f"block{block}_channel_out")(y)])
    x = layers.GlobalAveragePooling1D(name="gap")(layers.LayerNormalization(name="head_norm")(x))
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


# keras.applications constructor, preprocess mode, native input size.
_IMAGENET_APPS = {
    "vgg16": ("VGG16", "caffe", (224, 224, 3)),
    "resnet50": ("ResNet50", "caffe", (224, 224, 3)),
    "inception_v3": ("InceptionV3", "tf", (299, 299, 3)),
}


def imagenet_classifier(arch="vgg16", input_shape=None, num_classes=1000, weights=None, name=None):
    """Wraps a keras.applications network so that it takes [0, 1] images and returns logits.

    Args:
        arch: "vgg16", "resnet50" or "inception_v3".
        input_shape: defaults to the network's native size. A different size or
            ``num_classes != 1000`` replaces the ImageNet head by global average
            pooling and a new dense layer.
        weights: "imagenet" (downloads; needs network), a path to a local
            weights file (e.g. keras.applications' ``.h5``), or None (random,
            for tests and training from scratch: a loud warning says so).
    """
    if arch not in _IMAGENET_APPS:
        raise ConfigError(f"Unknown ImageNet architecture {arch!r}. Known: {', '.join(sorted(_IMAGENET_APPS))}.")
    app_name, mode, native = _IMAGENET_APPS[arch]
    input_shape = _check_shape(tuple(input_shape) if input_shape else native, num_classes, min_side=32)
    full_head = input_shape == native and num_classes == 1000
    app = build_application(
        app_name, weights, f"{arch} is built with RANDOM weights (weights=None): it is not an ImageNet classifier.",
        include_top=full_head, input_shape=input_shape, classifier_activation=None,
        pooling=None if full_head else "avg")
    inputs = keras.Input(input_shape, name="images")
    x = ImagePreprocess(mode, name="preprocess")(inputs)
    x = app(x)
    logits = x if full_head else layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name or arch)


def flip_average(model: keras.Model, name: str | None = None) -> keras.Model:
    """Wraps a classifier so that its logits are the mean over the image and its mirror image.

    Test-time augmentation for datasets whose labels survive a horizontal flip
    (Fashion-MNIST, CIFAR-10; not digits). The wrapper is an ordinary
    differentiable functional model: attacks see exactly what is served.
    """
    inputs = keras.Input(model.input_shape[1:], name="images")
    mirrored = model(HorizontalFlip(name="mirror")(inputs))
    logits = layers.Average(dtype="float32", name="flip_average")([model(inputs), mirrored])
    return keras.Model(inputs, logits, name=name or f"{model.name}_flip_tta")


CLASSIFIERS = Registry("classifier")  # a config's ``model``: builder(input_shape, num_classes, **kwargs) -> logits
register_classifier = CLASSIFIERS.register  # @register_classifier("name") on a builder, as for generators
for _name, _builder in {"small_cnn": small_cnn, "resnet_cifar": resnet_cifar, "mlp": mlp, "mlp_mixer": mlp_mixer,
                        "vgg16": lambda **kw: imagenet_classifier("vgg16", **kw),
                        "resnet50": lambda **kw: imagenet_classifier("resnet50", **kw),
                        "inception_v3": lambda **kw: imagenet_classifier("inception_v3", **kw)}.items():
    register_classifier(_name, _builder)


def build_classifier(name: str, **kwargs) -> keras.Model:
    """Builds the classifier registered as ``name`` with builder keyword arguments ``kwargs``; a ``name`` ending in
    ``.keras`` is a user's own classifier file (:func:`load_own_classifier`)."""
    if name.endswith(".keras"):
        return load_own_classifier(name, **kwargs)
    builder = CLASSIFIERS.lookup(name)
    try:
        return builder(**kwargs)
    except TypeError as e:  # an unknown keyword argument
        raise ConfigError(f"Bad arguments for classifier {name!r}: {e}") from None


def load_own_classifier(path: str, input_shape, num_classes: int, reinitialize: bool = False) -> keras.Model:
    """A copy of the classifier saved at ``path`` (Keras safe mode), checked against the data: it takes images of
    ``input_shape`` and returns ``num_classes`` outputs. The file is only read: a defense trains the copy.

    ``reinitialize``: the same architecture with fresh weights (adversarial training from scratch) rather than
    the saved weights (adversarial fine-tuning).
    """
    if not os.path.isfile(path):
        raise ConfigError(f"Classifier file {path!r} does not exist.")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # noqa: BLE001 - corrupt or unsafe files raise many types
        raise ConfigError(f"Cannot load the classifier {path!r} ({summary(e)}).") from None
    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(f"Classifier {path!r} must be a Keras model with one input (images) and one output "
                          "(logits).")
    if tuple(model.input_shape[1:]) != tuple(input_shape):
        raise ConfigError(f"Classifier {path!r} takes images of shape {tuple(model.input_shape[1:])}; the data's "
                          f"are {tuple(input_shape)}.")
    if model.output_shape[1:] != (num_classes,):
        raise ConfigError(f"Classifier {path!r} returns shape {model.output_shape[1:]} per image; the data has "
                          f"{num_classes} classes (one logit each).")
    return keras.models.clone_model(model) if reinitialize else model
