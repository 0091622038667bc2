import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv import export
from tfadv.callbacks import write_png
from tfadv.errors import ConfigError, DataUnavailableError
from tfadv.experiments import StyleExperiment
from tfadv.models.style import (ADAIN_LAYERS, CONTENT_LAYER, STYLE_LAYERS, AdaIN, GramStack, adain_network,
                                gram_matrix, gram_stack_network, vgg_features)
from tfadv.trainers.style import StyleTransferTrainer, gram_style_loss, total_variation
from tfadv.data.images import image_pairs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_vgg_taps_are_keras_applications_layers_on_caffe_input():
    names = {layer.name for layer in keras.applications.VGG16(include_top=False, weights=None,
                                                                input_shape=(32, 32, 3)).layers}
    assert set(STYLE_LAYERS + (CONTENT_LAYER,) + ADAIN_LAYERS) <= names
    extractor = vgg_features(STYLE_LAYERS + (CONTENT_LAYER,), (32, 32, 3))
    images = tf.random.uniform((2, 32, 32, 3), seed=0)
    feats = extractor(images)
    assert {n: tuple(feats[n].shape[1:]) for n in STYLE_LAYERS} == {
        "block1_pool": (16, 16, 64), "block2_pool": (8, 8, 128), "block3_pool": (4, 4, 256),
        "block4_pool": (2, 2, 512)}
    inner = extractor.get_layer("vgg16_taps")
    reference = keras.Model(inner.input, inner.get_layer("block2_pool").output)(
        keras.applications.vgg16.preprocess_input(images.numpy() * 255.0))
    np.testing.assert_allclose(feats["block2_pool"], reference, rtol=1e-4, atol=1e-3)
    with pytest.raises(ConfigError, match="Unknown VGG16 layer"):
        vgg_features(("relu3",), (32, 32, 3))
    with pytest.raises(ConfigError, match="existing weights file"):
        vgg_features(STYLE_LAYERS, (32, 32, 3), weights="/nope.h5")


def test_gram_stack_and_adain_layers():
    feats = tf.random.normal((2, 4, 4, 3), seed=1)
    flat = tf.reshape(feats, (2, 16, 3))
    np.testing.assert_allclose(gram_matrix(feats), tf.matmul(flat, flat, transpose_a=True) / 16, rtol=1e-5)
    stacked = GramStack(size=8, repeats=5)(feats)
    assert stacked.shape == (2, 8, 8, 5)
    np.testing.assert_allclose(stacked[..., 0], stacked[..., 4])
    content, style = tf.random.normal((2, 6, 6, 4), seed=2), 3 + 2 * tf.random.normal((2, 6, 6, 4), seed=3)
    out = AdaIN(1.0)([content, style])
    np.testing.assert_allclose(tf.reduce_mean(out, [1, 2]), tf.reduce_mean(style, [1, 2]), atol=1e-4)
    np.testing.assert_allclose(tf.math.reduce_std(out, [1, 2]), tf.math.reduce_std(style, [1, 2]), rtol=1e-3)
    np.testing.assert_allclose(AdaIN(0.0)([content, style]), content, atol=1e-6)
    with pytest.raises(ConfigError, match="alpha must be in"):
        AdaIN(1.5)


def test_losses_vanish_where_they_should():
    feats = {n: tf.random.normal((1, 4, 4, 8), seed=i) for i, n in enumerate(STYLE_LAYERS)}
    assert float(gram_style_loss(feats, feats)) == 0.0
    assert float(total_variation(tf.ones((1, 8, 8, 3)) * 0.3)) == 0.0
    assert float(total_variation(tf.random.uniform((1, 8, 8, 3), seed=1))) > 0.1


@pytest.mark.parametrize("method", ["gram", "adain"])
def test_style_trainer_lowers_its_loss_saves_and_exports(method, tmp_path):
    keras.utils.set_random_seed(0)
    net = (gram_stack_network(size=32, repeats=2, filters=(8,)) if method == "gram" else adain_network(size=32))
    trainer = StyleTransferTrainer(net, method, style_weight=1.0, tv_weight=0.1)
    content = tf.random.uniform((4, 32, 32, 3), seed=1)
    style = tf.random.uniform((4, 32, 32, 3), seed=2)
    trainer({"content": content[:1], "style": style[:1]})
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    vgg_before = [w.copy() for w in trainer.loss_net.get_weights()]
    history = trainer.fit(tf.data.Dataset.from_tensors((content, style)).repeat(8), epochs=1, verbose=0)
    first = trainer.evaluate(tf.data.Dataset.from_tensors((content, style)), verbose=0, return_dict=True)
    trainer.fit(tf.data.Dataset.from_tensors((content, style)).repeat(8), epochs=1, verbose=0)
    second = trainer.evaluate(tf.data.Dataset.from_tensors((content, style)), verbose=0, return_dict=True)
    assert second["loss"] < first["loss"], (history.history, first, second)
    for a, b in zip(vgg_before, trainer.loss_net.get_weights()):
        np.testing.assert_array_equal(a, b)
    trainer.network.save(tmp_path / "net.keras")
    reloaded = keras.saving.load_model(tmp_path / "net.keras")
    expected = trainer.network({"content": content, "style": style})
    np.testing.assert_allclose(reloaded({"content": content, "style": style}), expected, atol=1e-5)
    export.write_style(str(tmp_path / "sm"), trainer.network)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    # Graph and eager kernels sum VGG's large activations in different orders: ~3e-4 measured.
    np.testing.assert_allclose(loaded.serve(content, style), expected, atol=1e-3)
    assert float(tf.reduce_min(expected)) >= 0 and float(tf.reduce_max(expected)) <= 1


def test_stylize_tool_writes_an_image(tmp_path):
    net = adain_network(size=32)
    export.write_style(str(tmp_path / "sm"), net)
    write_png(str(tmp_path / "c.png"), tf.random.uniform((40, 50, 3), seed=0))
    write_png(str(tmp_path / "s.png"), tf.random.uniform((20, 20, 3), seed=1))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "stylize.py"), f"--saved_model={tmp_path}/sm",
                           f"--content={tmp_path}/c.png", f"--style={tmp_path}/s.png", f"--output={tmp_path}/o.png"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = tf.io.decode_png(tf.io.read_file(str(tmp_path / "o.png")))
    assert out.shape == (32, 32, 3)
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "stylize.py"), f"--saved_model={tmp_path}/sm",
                          "--content=/nope.png", f"--style={tmp_path}/s.png", f"--output={tmp_path}/x.png"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Cannot read image '/nope.png'" in bad.stderr and "Traceback" not in bad.stderr


def test_image_pairs_from_folders(tmp_path):
    for folder, n in (("content", 5), ("style", 2)):
        os.makedirs(tmp_path / folder / "sub")
        for i in range(n):
            write_png(str(tmp_path / folder / "sub" / f"{i}.png"), tf.random.uniform((10 + i, 12, 3), seed=i))
    pairs = image_pairs(str(tmp_path / "content"), str(tmp_path / "style"), size=16, batch_size=2)
    batches = list(pairs)
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    assert batches[0][1].shape == (2, 16, 16, 3)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DataUnavailableError, match="holds no"):
        image_pairs(str(tmp_path / "content"), str(tmp_path / "empty"), 16, 2)
    with pytest.raises(DataUnavailableError, match="does not exist"):
        image_pairs(str(tmp_path / "missing"), str(tmp_path / "style"), 16, 2)


def test_style_config_validation():
    with pytest.raises(ConfigError, match="multiple of 16"):
        StyleExperiment(size=100).validate()
    with pytest.raises(ConfigError, match="method must be"):
        StyleExperiment(method="wct").validate()
