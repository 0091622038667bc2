import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv.errors import ConfigError
from tfadv.models import CLASSIFIERS, ImagePreprocess, build_classifier

SMALL_CASES = [
    ("small_cnn", dict(input_shape=(28, 28, 1), num_classes=10, filters=[8, 16], dropout=0.1, dense_units=16)),
    ("resnet_cifar", dict(input_shape=(32, 32, 3), num_classes=10, depth=8, width=4)),
    ("vgg16", dict(input_shape=(32, 32, 3), num_classes=5)),
    ("mlp", dict(input_shape=(28, 28, 1), num_classes=10, units=[16, 8])),
    ("mlp_mixer", dict(input_shape=(32, 32, 3), num_classes=7, patch_size=8, dim=16, depth=2)),
]


@pytest.mark.parametrize("name,kwargs", SMALL_CASES, ids=[c[0] for c in SMALL_CASES])
def test_classifier_outputs_logits_and_reloads_identically(name, kwargs, tmp_path):
    model = build_classifier(name, **kwargs)
    images = tf.random.uniform((3,) + kwargs["input_shape"], seed=1)
    logits = model(images, training=False)
    assert logits.shape == (3, kwargs["num_classes"])
    assert not np.allclose(tf.reduce_sum(tf.nn.softmax(logits), -1), tf.reduce_sum(logits, -1)), \
        "outputs must be logits, not probabilities"
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded(images, training=False), logits, rtol=1e-5, atol=1e-5)
    assert json.loads(reloaded.to_json()) == json.loads(model.to_json())


def test_two_step_fit_changes_weights_and_lowers_loss():
    keras.utils.set_random_seed(0)
    model = build_classifier("small_cnn", input_shape=(28, 28, 1), num_classes=10, filters=[8, 16])
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).uniform(size=(32, 28, 28, 1)).astype("float32")
    y = np.arange(32) % 10
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("mode,reference", [
    ("caffe", keras.applications.vgg16.preprocess_input),
    ("tf", keras.applications.inception_v3.preprocess_input),
])
def test_image_preprocess_matches_keras_applications(mode, reference):
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    ours = ImagePreprocess(mode)(images)
    np.testing.assert_allclose(ours, reference(images * 255.0), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name,kwargs,message", [
    ("lenet", {}, "Unknown classifier 'lenet'"),
    ("small_cnn", dict(input_shape=(28, 28)), r"input_shape must be \(height, width, channels\)"),
    ("small_cnn", dict(num_classes=1), "num_classes must be an int >= 2"),
    ("small_cnn", dict(filters=[]), "filters must be a non-empty list"),
    ("small_cnn", dict(widths=[8]), "Bad arguments for classifier 'small_cnn'"),
    ("resnet_cifar", dict(depth=21), "depth must be 6n"),
    ("mlp", dict(units=[16, 0]), "units must be a non-empty list of positive ints"),
    ("mlp_mixer", dict(patch_size=5), r"patch_size must be a positive int dividing the image's height and width"),
    ("mlp_mixer", dict(depth=0), "depth must be a positive int"),
    ("vgg16", dict(weights="/nonexistent.h5"), "existing weights file"),
    ("vgg16", dict(input_shape=(16, 16, 3), num_classes=10), "too small"),
])
def test_bad_classifier_arguments_are_named(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_classifier(name, **kwargs)


def test_imagenet_wrapper_loads_a_local_weights_file(tmp_path):
    source = build_classifier("vgg16", input_shape=(32, 32, 3), num_classes=4)
    app = source.get_layer("vgg16")
    path = str(tmp_path / "vgg16.weights.h5")
    app.save_weights(path)
    rebuilt = build_classifier("vgg16", input_shape=(32, 32, 3), num_classes=4, weights=path)
    for a, b in zip(app.get_weights(), rebuilt.get_layer("vgg16").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_registry_lists_all_families():
    assert {"small_cnn", "resnet_cifar", "mlp", "mlp_mixer", "vgg16", "resnet50", "inception_v3"} <= set(CLASSIFIERS)


def test_flip_average_is_mirror_invariant_and_reloads(tmp_path):
    from tfadv.models import flip_average

    base = build_classifier("small_cnn", filters=[4, 8])
    model = flip_average(base)
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(model(x), model(x[:, :, ::-1]), atol=1e-5)
    np.testing.assert_allclose(model(x), (base(x) + base(x[:, :, ::-1])) / 2, atol=1e-5)
    model.save(tmp_path / "tta.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "tta.keras")(x), model(x), atol=1e-5)
