"""Bring your own classifier (tfadv.byo, tfadv-attack --target / --pixel_scale / --image_dir) and
tfadv-evaluate --figures_dir, with classifiers and zoos the tests build themselves."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import brightness_task, require_fashion_mnist
from tfadv import byo, savedmodel, targets, zoo
from tfadv.data.images import labelled_image_folder
from tfadv.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", "CI": "1"}


def run_tool(name, *args, check=True):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", f"{name}.py"), *args], env=ENV,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def classifier():
    """[0, 1] 28x28 images -> 10 logits, trained briefly on the brightness task."""
    keras.utils.set_random_seed(0)
    x, y = brightness_task(512)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=30, batch_size=64, verbose=0)  # 0.67 accuracy on held-out images (seed 0)
    return model


def expects_0_255(model):
    """The same classifier for 0-255 pixels: the scaling lives in the model, as in many user models."""
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255), model])


def test_load_classifier_reads_keras_files_and_savedmodel_dirs_alike(classifier, tmp_path):
    x, y = brightness_task(64, seed=1)
    path, saved = str(tmp_path / "clf.keras"), str(tmp_path / "clf_savedmodel")
    classifier.save(path)
    classifier.export(saved, verbose=False)
    expected = classifier(x).numpy()
    assert np.mean(np.argmax(expected, -1) == y) > 0.5  # a classifier worth attacking
    for target in (path, saved):
        loaded = byo.load_classifier(target)
        np.testing.assert_allclose(loaded(x), expected, rtol=1e-4, atol=1e-4)
        byo.check_classifier(loaded, x, y, num_classes=10)  # meets the contract: no error
    scaled_path = str(tmp_path / "x255.keras")
    expects_0_255(classifier).save(scaled_path)
    wrapped = byo.load_classifier(scaled_path, pixel_scale=255)
    np.testing.assert_allclose(wrapped(x), expected, rtol=1e-4, atol=1e-4)
    byo.check_classifier(wrapped, x, y, num_classes=10)
    with pytest.raises(ConfigError, match=r"seems to expect pixels in 0-255: accuracy 0\.\d\d on 64 \[0, 1\] "
                                          r"images.*pass --pixel_scale=255"):
        byo.check_classifier(byo.load_classifier(scaled_path), x, y, num_classes=10)
    softmax = keras.Sequential([classifier, keras.layers.Softmax()])
    with pytest.raises(ConfigError, match="returns probabilities .*tfadv needs logits .*pass --strip_softmax"):
        byo.check_classifier(softmax, x, y, num_classes=10)
    with pytest.raises(ConfigError, match=r"returns shape \(10,\) per batch; the data needs one logit per class \(3\)"):
        byo.check_classifier(wrapped, x, y % 3, num_classes=3)
    with pytest.raises(ConfigError, match="holds no saved_model.pb"):
        byo.load_classifier(str(tmp_path))


def test_python_api_trains_and_saves_an_attack_on_a_savedmodel(classifier, tmp_path):
    saved = str(tmp_path / "clf_savedmodel")
    classifier.export(saved, verbose=False)
    target = byo.load_classifier(saved)
    x, y = brightness_task(64, seed=2)
    attack = byo.generator_attack(target, (28, 28, 1), norm="l2", eps=2.4, filters=4)
    history = attack.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=1, verbose=0)
    assert history.history["l2_max"][0] <= 2.4 + 1e-4
    x_hat = attack(x).numpy()
    l2 = np.sqrt(np.sum(np.square(x_hat - x).reshape(len(x), -1), 1))
    assert l2.max() <= 2.4 + 1e-4 and l2.max() > 0.1 and x_hat.min() >= 0 and x_hat.max() <= 1
    attack.attacker.save(str(tmp_path / "attacker.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "attacker.keras"))
    np.testing.assert_allclose(reloaded(x), x_hat, atol=1e-5)
    with pytest.raises(ConfigError, match="mode must be"):
        byo.generator_attack(target, (28, 28, 1), mode="joint")


def write_png_folder(directory, classes, per_class=2, seed=3):
    """One subfolder per class holding brightness-task PNGs of that class (8-bit, 28x28 grey)."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        os.makedirs(os.path.join(directory, str(k)), exist_ok=True)
        for i in range(per_class):
            image = (rng.uniform(0, 0.1, (28, 28, 1)) + (k % 10) * 0.09) * 255
            png = tf.io.encode_png(tf.constant(np.round(image).astype(np.uint8)))
            tf.io.write_file(os.path.join(directory, str(k), f"{i}.png"), png)
    return str(directory)


def test_cli_attacks_a_0_255_savedmodel_and_measures_on_a_png_folder(classifier, idx_dir, tmp_path):
    saved = str(tmp_path / "user_model")
    expects_0_255(classifier).export(saved, verbose=False)
    images = write_png_folder(tmp_path / "pngs", 10)
    workdir, zoo_dir = str(tmp_path / "run"), str(tmp_path / "zoo")
    common = [f"--target={saved}", f"--workdir={workdir}", f"--zoo_dir={zoo_dir}", f"--image_dir={images}",
              f"--set=data.idx_dir={idx_dir}"]
    refused = run_tool("attack", *common, check=False)  # no --pixel_scale: checked before any training
    assert refused.returncode == 2 and "seems to expect pixels in 0-255" in refused.stderr
    assert "Traceback" not in refused.stderr and not os.path.exists(workdir)

    out = run_tool("attack", *common, "--pixel_scale=255", "--set=epochs=1", "--set=steps_per_epoch=2",
                   "--set=data.batch_size=32", "--set=generator_kwargs.filters=4", "--pgd_examples=4",
                   "--pgd_steps=2", "--batch_size=8", "--figure_examples=2").stdout
    text = open(os.path.join(workdir, "report", "report.md")).read()
    assert text.startswith("# Attack on user_model (pixels x255): fashion_mnist_unet_l2_vs_user_model_x255_1ep\n")
    assert "## Attacks at L2 <= 2.4 (image folder)" in text and f"image folder {images}" in text
    assert "| none (clean images) | 20 |" in text and "| PGD-2, first 4 | 4 |" in text
    entry = json.load(open(os.path.join(zoo_dir, "registry.json")))["fashion_mnist_unet_l2_vs_user_model_x255_1ep"]
    assert entry["target"] == f"{saved}?pixel_scale=255"  # re-measured later with the same wrapping
    # The exported generator, checked here on the PNGs with plain TensorFlow.
    ds, names = labelled_image_folder(images, (28, 28, 1), batch_size=20)
    assert names == [str(k) for k in range(10)]
    x, y = next(iter(ds))
    exported = tf.saved_model.load(os.path.join(zoo_dir, entry["path"]))  # referenced while serving
    x_hat = exported.serve(x)
    adv_accuracy = float(np.mean(np.argmax(classifier(x_hat), -1) == y.numpy()))
    assert f"| generator (unet, thresholded) | 20 | {adv_accuracy:.4f} |" in text
    assert f"tf.saved_model.load check: adv accuracy {adv_accuracy:.4f}" in out


def test_readme_python_example_runs_as_written(tmp_path):
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme[readme.index("## Attack your own classifier"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    require_fashion_mnist()  # the README example reads the real Fashion-MNIST
    small = code.replace('"train[:2%]"', '"train[:64]"')
    assert small.count("train[:64]") == 1 and small != code
    proc = subprocess.run([sys.executable, "-c", small], cwd=tmp_path, env={**ENV, "PYTHONPATH": ROOT},
                          capture_output=True, text=True, timeout=300)  # from any folder, as written
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "attacker.keras").is_file()
    assert re.search(r"accuracy on x: [\d.]+ on x_hat: [\d.]+", proc.stdout), proc.stdout
    assert keras.saving.load_model(str(tmp_path / "attacker.keras"))(np.zeros((1, 28, 28, 1))).shape == (1, 28, 28, 1)


def tiny_zoo(zoo_dir, classifier):
    """A classifier entry and a universal attack entry against it (U: a fixed bright square)."""
    with zoo.staging("cls", str(zoo_dir)) as stage:
        savedmodel.write_classifier(stage.path, classifier)
        stage.commit(kind="classifier", dataset="fashion_mnist", metrics={"accuracy": 0.5}, config={})
    shift = tf.Module()
    u = np.zeros((1, 28, 28, 1), "float32")
    u[:, 4:12, 4:12] = 0.3
    shift.u = tf.Variable(u)
    with zoo.staging("uap", str(zoo_dir)) as stage:
        archive = keras.export.ExportArchive()
        archive.track(shift)
        archive.add_endpoint("serve", lambda x: tf.clip_by_value(x + shift.u, 0.0, 1.0),
                             input_signature=[savedmodel.image_spec((28, 28, 1))])
        archive.add_endpoint("perturbation", lambda: shift.u, input_signature=[])
        archive.write_out(stage.path, verbose=False)
        stage.commit(kind="universal", dataset="fashion_mnist", target="cls", budget={"norm": "l2", "eps": 2.4},
                     metrics={"adv_accuracy": 0.5}, config={"target_class": None})


def test_evaluate_writes_figures_and_a_report_for_any_zoo_entry(classifier, idx_dir, tmp_path):
    zoo_dir = tmp_path / "zoo"
    tiny_zoo(zoo_dir, classifier)
    figures_dir = tmp_path / "figs"
    proc = run_tool("evaluate", "--zoo_name=uap", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}",
                    f"--figures_dir={figures_dir}")
    metrics = json.loads(proc.stdout)  # stdout stays JSON; the report's path goes to stderr
    assert f"report: {figures_dir / 'report.md'}" in proc.stderr
    text = (figures_dir / "report.md").read_text()
    assert "## uap on fashion_mnist test, judged against L2 <= 2.4" in text
    assert f"| cls | {metrics['adv_accuracy']:.4f} | {metrics['clean_accuracy']:.4f} |" in text
    shapes = {}
    for name in ("attack", "universal_perturbation", "confusion_on_x_hat"):
        assert f"![{name}]({name}.png)" in text
        shapes[name] = tf.io.decode_png(tf.io.read_file(str(figures_dir / f"{name}.png"))).shape
    assert shapes["attack"][0] > 8 * 28 * 4  # 8 rows of upscaled examples
    assert shapes["confusion_on_x_hat"][0] > 10 * 40  # 10 classes, 40-pixel cells
    cls_dir = tmp_path / "cls_figs"
    run_tool("evaluate", "--zoo_name=cls", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}", f"--figures_dir={cls_dir}")
    assert "![misclassified](misclassified.png)" in (cls_dir / "report.md").read_text()
    assert (cls_dir / "misclassified.png").is_file()


def test_the_contract_refuses_a_classifier_with_non_finite_logits(classifier):
    x, _ = brightness_task(16, seed=4)

    def broken(images):  # NaN logits for the darker half of the batch
        logits = classifier(images)
        return tf.where(tf.reduce_mean(images, [1, 2, 3])[:, None] < 0.4, np.nan, logits)

    with pytest.raises(ConfigError, match=r"returns NaN or infinite logits for \d+ of 16"):
        byo.check_classifier(broken, x, num_classes=10)


@pytest.mark.parametrize("pixels,message", [(255.0, r"must lie in \[0, 1\].*0-255 pixels"), (np.nan, "NaN")])
def test_the_python_generator_attack_refuses_pixels_outside_the_contract(classifier, pixels, message):
    from tfadv.errors import InputError

    attack = byo.generator_attack(classifier, (28, 28, 1), norm="l2", eps=2.4, filters=4)
    x, _ = brightness_task(4, seed=5)
    bad = x * 255.0 if pixels == 255.0 else np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x)
    with pytest.raises(InputError, match=message):
        attack(bad.astype("float32"))
    assert attack(x).shape == x.shape  # [0, 1] pixels pass


def test_an_image_folder_names_an_undecodable_file_and_reports_what_it_skipped_or_converted(tmp_path, caplog):
    from tfadv.errors import InputError

    folder = write_png_folder(tmp_path / "pngs", 2)
    (tmp_path / "pngs" / "0" / "notes.txt").write_text("not an image")
    rgb = tf.io.encode_png(tf.constant(np.full((28, 28, 3), [255, 0, 0], np.uint8)))
    tf.io.write_file(str(tmp_path / "pngs" / "1" / "red.png"), rgb)
    with caplog.at_level("WARNING", logger="tfadv.data"):
        ds, names = labelled_image_folder(folder, (28, 28, 1), batch_size=10)
    x, y = next(iter(ds))
    assert names == ["0", "1"] and x.shape == (5, 28, 28, 1) and list(y.numpy()) == [0, 0, 1, 1, 1]
    assert "Skipped 1 file(s)" in caplog.text and "notes.txt" in caplog.text
    assert "Converted 1 image(s)" in caplog.text and "red.png" in caplog.text
    red = x.numpy()[4]  # sorted after 0.png, 1.png: the red image as luminance
    assert np.allclose(red, 0.2989, atol=0.01)
    from PIL import Image

    Image.fromarray(np.full((20, 20, 3), [0, 0, 255], np.uint8)).save(tmp_path / "pngs" / "1" / "z_blue.gif")
    with caplog.at_level("WARNING", logger="tfadv.data"):
        ds, _ = labelled_image_folder(folder, (28, 28, 1), batch_size=10)  # a GIF for a grayscale classifier
    x, y = next(iter(ds))
    assert x.shape == (6, 28, 28, 1) and int(y[5]) == 1 and "Converted 2 image(s)" in caplog.text
    assert np.allclose(x.numpy()[5], 0.114, atol=0.01)  # blue as luminance, resized to 28x28
    (tmp_path / "pngs" / "1" / "torn.png").write_bytes(rgb.numpy()[:40])
    with pytest.raises(InputError, match=r"Cannot decode image .*torn\.png"):
        labelled_image_folder(folder, (28, 28, 1))


@pytest.mark.parametrize("head", ["activation", "layer"])
def test_strip_softmax_attacks_the_logits_of_a_softmax_model(classifier, tmp_path, head):
    """A softmax model is refused with a pointer to strip_softmax, which removes the softmax from the loaded copy
    (a Dense(activation="softmax") or a trailing Softmax layer) and leaves the file as it was."""
    x, y = brightness_task(32, seed=6)
    trunk = keras.Sequential(classifier.layers[:-1])
    dense = keras.layers.Dense(10, activation="softmax" if head == "activation" else None)
    layers = [keras.Input((28, 28, 1)), *trunk.layers, dense] + ([keras.layers.Softmax()] if head == "layer" else [])
    model = keras.Sequential(layers)
    dense.set_weights(classifier.layers[-1].get_weights())
    path = str(tmp_path / "softmax.keras")
    model.save(path)
    size = os.path.getsize(path)
    with pytest.raises(ConfigError, match="returns probabilities .* pass --strip_softmax"):
        byo.check_classifier(byo.load_classifier(path), x, y, num_classes=10)
    stripped = byo.load_classifier(path, strip_softmax=True)
    np.testing.assert_allclose(stripped(x), classifier(x), atol=1e-5)  # the logits of the same weights
    byo.check_classifier(stripped, x, y, num_classes=10)
    assert os.path.getsize(path) == size and np.allclose(keras.saving.load_model(path)(x).numpy().sum(-1), 1.0)
    target = targets.with_options(targets.with_pixel_scale(path, 255), strip_softmax=True)
    assert target == f"{path}?pixel_scale=255&strip_softmax=1" and targets.split_target(target) == (path, 255.0)


def test_strip_softmax_is_refused_where_there_is_none_to_strip(classifier, tmp_path):
    path = str(tmp_path / "logits.keras")
    classifier.save(path)
    with pytest.raises(ConfigError, match="has no softmax to strip"):
        byo.load_classifier(path, strip_softmax=True)
    with pytest.raises(ConfigError, match="strip_softmax needs a .keras model"):
        byo.load_classifier("fashion_mnist_small_cnn", strip_softmax=True)
    with pytest.raises(ConfigError, match="unknown option 'softmax=0'"):
        byo.load_classifier(f"{path}?softmax=0")
