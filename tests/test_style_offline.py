"""Style transfer without downloads: the random encoder, Debian's photographs, the untrained-export guard, and the
trained zoo entries stylising bundled images."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from test_style import run_tool
from tfadv import experiments, presets, zoo
from tfadv import style_evaluation as se
from tfadv.data import photos
from tfadv.errors import ConfigError, DataUnavailableError, ZooError
from tfadv.schema import StyleExperiment
from tfadv.models.random_encoder import CAP, pink_noise_images, random_vgg19
from tfadv.models.style import STYLE_LAYERS, style_features
from tfadv.tasks.style import StyleTask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "examples", "images")
STYLE_ENTRIES = ("style_gram_stack_offline", "style_adain_offline")


def _convs(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def test_the_random_encoder_is_a_function_of_its_seed_and_width_at_every_size():
    small, large = random_vgg19((64, 64, 3), seed=3, width=0.125), random_vgg19((128, 96, 3), seed=3, width=0.125)
    for a, b in zip(small.get_weights(), large.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = random_vgg19((64, 64, 3), seed=4, width=0.125)
    assert not np.allclose(small.get_weights()[0], other.get_weights()[0])
    assert [c.filters for c in _convs(small)] == [8, 8, 16, 16, 32, 32, 32, 32, 64, 64, 64, 64]
    assert not any(w.trainable for w in small.weights)


def test_every_channel_of_the_random_encoder_averages_one_on_its_calibration_images():
    """Calibration runs plain ReLUs (a scale commutes with them); the encoder then caps them at CAP."""
    encoder = random_vgg19((64, 64, 3), seed=0, width=0.125)
    uncapped = keras.models.clone_model(encoder, clone_function=lambda layer: keras.layers.ReLU(name=layer.name)
                                        if isinstance(layer, keras.layers.ReLU) else layer.__class__.from_config(
                                            layer.get_config()))
    uncapped.set_weights(encoder.get_weights())
    calibration = pink_noise_images(8, 64, 0)
    for relu in (layer for layer in uncapped.layers if isinstance(layer, keras.layers.ReLU)):
        means = np.mean(np.asarray(keras.Model(uncapped.input, relu.output)(calibration)), axis=(0, 1, 2))
        live = means > 1e-6
        assert live.mean() > 0.9, relu.name
        np.testing.assert_allclose(means[live], 1.0, rtol=1e-3, err_msg=relu.name)
    # The features still tell images apart.
    features = style_features(STYLE_LAYERS, (64, 64, 3), "random_vgg19", encoder_kwargs={"seed": 0, "width": 0.125})
    pools = features(calibration[:2])["block2_pool"]
    assert float(tf.reduce_max(tf.abs(pools[0] - pools[1]))) > 0.1


def test_the_random_encoders_activations_are_capped_on_adversarial_images():
    """Photographs' edges make a random network's activations heavy-tailed (uncapped: up to 595 at relu4_1 on four
    photographs); every tap stays within [0, CAP], even on saturated stripes, checkerboards and noise."""
    features = style_features(STYLE_LAYERS + ("block4_conv1",), (64, 64, 3), "random_vgg19",
                              encoder_kwargs={"seed": 0, "width": 0.125})
    stripes = np.tile((np.arange(64) % 2).astype(np.float32)[None, :, None], (64, 1, 3))
    checker = np.logical_xor(*np.meshgrid(np.arange(64) % 4 < 2, np.arange(64) % 4 < 2)).astype(np.float32)
    images = np.stack([stripes, np.repeat(checker[..., None], 3, -1), np.ones((64, 64, 3), np.float32),
                       np.random.default_rng(0).uniform(0, 1, (64, 64, 3)).astype(np.float32)])
    for name, value in features(images).items():
        value = np.asarray(value)
        assert value.min() >= 0.0 and value.max() <= CAP, name
    assert max(float(np.max(v)) for v in features(images).values()) == CAP  # the cap is reached, so it acts


@pytest.mark.parametrize("kwargs, message", [({"width": 0.0}, "width must be in"), ({"seed": -1}, "seed must be"),
                                            ({"input_shape": (60, 64, 3)}, "multiples of 16")])
def test_random_encoder_settings_are_checked_in_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        random_vgg19(**{"input_shape": (64, 64, 3), **kwargs})


def test_a_style_config_chooses_its_encoder_and_refuses_unknown_settings():
    with pytest.raises(ConfigError, match="encoder must be"):
        StyleExperiment(encoder="resnet").validate()
    with pytest.raises(ConfigError, match="takes no"):
        StyleExperiment(encoder="random_vgg19", encoder_kwargs={"depth": 3}, size=64).validate()
    assert StyleExperiment().encoder == "vgg16"  # the ImageNet VGG stays the default where its weights are


def _fake_backgrounds(root):
    """Every wallpaper file the photo set names, as small generated images (Plasma folders hold two sizes)."""
    rng = np.random.default_rng(0)
    for source in photos.SOURCES:
        path = os.path.join(root, source.path)
        if source.package == "plasma-workspace-wallpapers":
            os.makedirs(os.path.join(path, "contents", "images"))
            for name in ("40x30.jpg", "120x90.jpg"):
                size = tuple(int(v) for v in name[:-4].split("x"))
                Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8)).save(
                    os.path.join(path, "contents", "images", name))
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "RGBA" if path.endswith(".png") else "RGB"
        Image.fromarray(rng.integers(0, 255, (60, 90, len(mode)), np.uint8), mode).save(path)


def test_the_photo_set_writes_crops_with_their_sources_and_licences(tmp_path):
    _fake_backgrounds(tmp_path / "share")
    manifest = photos.prepare(str(tmp_path / "out"), size=32, root=str(tmp_path / "share"))
    files = manifest["files"]
    per_role = {role: [f for f in files if f["file"].startswith(role + "/")] for role in photos.ROLES}
    heldout_sources = {f["source"] for role in ("heldout_content", "heldout_style") for f in per_role[role]}
    assert not heldout_sources & {f["source"] for role in ("content", "style") for f in per_role[role]}
    assert len(per_role["content"]) == 4 * sum(s.role == "content" for s in photos.SOURCES)
    assert all(f["licence"] == photos.LICENCES[f["package"]] for f in files)
    plasma = [f["source"] for f in files if f["package"] == "plasma-workspace-wallpapers"]
    assert plasma and all(s.endswith("120x90.jpg") for s in plasma)  # the largest of a folder's sizes
    for f in files:
        with Image.open(tmp_path / "out" / f["file"]) as image:
            assert image.size == (32, 32) and image.mode == "RGB" and "icc_profile" not in image.info
    assert json.loads((tmp_path / "out" / "MANIFEST.json").read_text()) == manifest


def test_missing_wallpaper_packages_are_named_in_one_line(tmp_path):
    with pytest.raises(DataUnavailableError, match="apt-get install .*mate-backgrounds"):
        photos.prepare(str(tmp_path / "out"), root=str(tmp_path))


def test_an_untrained_style_network_is_not_exported():
    cfg = StyleExperiment(size=32)

    def flat(content, style):
        return tf.fill(tf.shape(content), 0.5) + 0.001 * content

    with pytest.raises(ZooError, match="near-constant .* untrained"):
        StyleTask().exported_figures(flat, cfg, "/nonexistent")


def test_the_cli_refuses_to_export_a_one_step_style_run_and_leaves_the_zoo_untouched(tmp_path):
    from test_style import white_image
    from tfadv.data.images import write_png

    for folder, seeds in (("content", (0, 1, 2)), ("style", (3, 4))):
        os.makedirs(tmp_path / folder)
        for seed in seeds:
            write_png(str(tmp_path / folder / f"{seed}.png"), white_image(36 + seed, 44, seed))
    run_dir, zoo_dir = str(tmp_path / "run"), str(tmp_path / "zoo")
    trained = run_tool("train", "--experiment=style_adain", f"--workdir={run_dir}", "--set=size=32",
                       "--set=batch_size=2", "--set=vgg_weights=null", f"--set=content_dir={tmp_path}/content",
                       f"--set=style_dir={tmp_path}/style", "--epochs=1", "--steps_per_epoch=1")
    assert trained.returncode == 0, trained.stderr
    exported = run_tool("export", f"--workdir={run_dir}", "--name=tiny_style", f"--zoo_dir={zoo_dir}")
    errors = [line for line in exported.stderr.splitlines() if line.startswith("Error: ")]
    assert exported.returncode == 2 and len(errors) == 1 and "untrained" in errors[0], exported.stderr
    assert "tiny_style" not in zoo.read_registry(zoo_dir)
    assert not [n for n in os.listdir(zoo_dir) if n != "registry.json" and not n.startswith(".")]


def test_independent_losses_measure_what_they_say():
    rng = np.random.default_rng(0)
    images = se.HeldOut(["a", "b"], pink_noise_images(2, 32, 5), ["s"], rng.uniform(0, 1, (1, 32, 32, 3)))
    unchanged = np.repeat(images.contents[:, None], 1, 1)  # outputs = the content images
    found = se.independent_losses(unchanged.astype(np.float32), images)
    assert found["output"] == found["content_image_unchanged"] and found["output"]["content_loss"] == 0.0
    assert found["style_image_itself"]["style_loss"] == 0.0 < found["output"]["style_loss"]
    assert found["settings"]["seed"] == 1 and found["settings"]["pairs"] == 2
    grid = se.grid_figure(unchanged, images, "t")
    assert grid.ndim == 3 and grid.shape[1] >= 2 * 32


@pytest.mark.parametrize("name", STYLE_ENTRIES)
def test_a_zoo_style_network_stylises_the_bundled_images_from_the_command_line(name, tmp_path):
    entry = zoo.entry(name)
    assert entry["config"]["encoder"] == "random_vgg19" and entry["metrics"]["output_std"] >= 0.05
    content, style = (os.path.join(SAMPLES, f) for f in ("content_ladybird.png", "style_truchet.png"))
    by_name = run_tool("stylize", f"--zoo_name={name}", f"--content={content}", f"--style={style}",
                       f"--output={tmp_path}/out.png")
    assert by_name.returncode == 0, by_name.stderr
    written = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out.png"))).numpy() / 255.0
    from tfadv.data.images import read_image
    from tfadv.stylize import load_style

    serve, size, _loaded = load_style(zoo_name=name)
    expected = np.asarray(serve(read_image(content, size), read_image(style, size)))[0]
    np.testing.assert_allclose(written, expected, atol=1 / 255 + 1e-6)
    assert written.shape == (size, size, 3) and written.std() > 0.05
    # Not a copy of either input.
    assert np.abs(written - read_image(content, size)[0]).mean() > 0.02
    assert np.abs(written - read_image(style, size)[0]).mean() > 0.02
    bad = run_tool("stylize", f"--zoo_name={name}", f"--content={SAMPLES}/LICENSE.md", f"--style={style}",
                   f"--output={tmp_path}/x.png")
    assert bad.returncode == 2 and "Error: Cannot read image" in bad.stderr and "Traceback" not in bad.stderr
    assert "function_node" not in bad.stderr and "Unknown image file format" in bad.stderr  # TF's op prefix gone


def test_a_zoo_style_entry_records_its_heldout_evaluation():
    for name in STYLE_ENTRIES:
        evaluation = zoo.entry(name)["metrics"]["style_evaluation"]
        losses = evaluation["heldout_losses"]
        assert losses["settings"]["seed"] != zoo.entry(name)["config"]["encoder_kwargs"]["seed"]
        assert set(evaluation["images_per_second"]) >= {"256", "512", "published_reference"}
        assert evaluation["command"] in zoo.other_tools_commands(name)


def test_a_zoo_style_network_loads_as_keras_and_runs_at_another_size():
    name = "style_adain_offline"
    model = presets.load_keras(name)
    cfg = experiments.from_dict(zoo.entry(name)["config"])
    from dataclasses import replace

    from tfadv.tasks.style import build_style_network

    bigger = build_style_network(replace(cfg, size=2 * cfg.size))
    bigger.set_weights(model.get_weights())
    content = tf.constant(pink_noise_images(1, 2 * cfg.size, 7))
    out = bigger({"content": content, "style": content[:, ::-1]})
    assert out.shape == (1, 2 * cfg.size, 2 * cfg.size, 3) and float(tf.math.reduce_std(out)) > 0.02
