"""Training an attack on your own labelled data (tfadv.data.own): tfadv-attack --train_dir end to end on a 64x64 RGB
folder, the Python entry point (tfadv.training.run_experiment(..., data=...)) on folders, arrays and tf.data at
28x28x1, 32x32x3 and 96x96x3, and the one-line errors. Classes differ by mean colour, so tiny classifiers learn them."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv import experiments, export, training
from tfadv.data import own
from tfadv.data.images import labelled_images, write_png
from tfadv.errors import ConfigError, InputError
from tfadv.models.generators import fitting_depth

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", "CI": "1"}
COLOURS = np.array([[0.8, 0.2, 0.2], [0.2, 0.8, 0.2], [0.2, 0.2, 0.8]])  # class k's mean colour
CLASSES = ("cat", "dog", "fox")
EPS = 2.4


def class_images(k, n, shape, seed):
    """n images of class k: its mean colour (as luminance for one channel) plus a random pattern, in [0, 1]."""
    colour = COLOURS[k] if shape[2] == 3 else COLOURS[k] @ [0.2989, 0.587, 0.114]
    noise = np.random.default_rng(seed + k).normal(0, 0.06, (n, *shape))
    return np.clip(colour + noise, 0, 1).astype("float32")


def labelled_arrays(n_per_class, shape, seed=0):
    x = np.concatenate([class_images(k, n_per_class, shape, seed) for k in range(len(CLASSES))])
    return x, np.repeat(np.arange(len(CLASSES)), n_per_class).astype("int32")


def write_folder(root, per_class, shape, seed=1):
    """One subfolder per class of PNGs of ``shape`` (written at that size; read at the classifier's)."""
    for k, name in enumerate(CLASSES):
        for i, image in enumerate(class_images(k, per_class, shape, seed)):
            write_png(os.path.join(root, name, f"{i:02d}.png"), image)
    return str(root)


def classifier(path, shape):
    """A tiny classifier of [0, 1] images of ``shape`` -> 3 logits, trained in a few steps, saved as .keras."""
    keras.utils.set_random_seed(0)
    x, y = labelled_arrays(40, shape, seed=7)
    model = keras.Sequential([keras.Input(shape), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(len(CLASSES))])
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=8, batch_size=40, verbose=0)
    held_out, labels = labelled_arrays(10, shape, seed=11)
    assert np.mean(np.argmax(model(held_out), -1) == labels) > 0.9  # a classifier worth attacking
    model.save(path)
    return model


def attack_tool(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "attack.py"), *args], env=ENV,
                          capture_output=True, text=True, timeout=300)


def l2_norms(x_hat, x):
    return np.sqrt(np.sum(np.square(np.asarray(x_hat) - x).reshape(len(x), -1), 1))


def test_attack_tool_trains_on_a_64x64_rgb_folder_and_reports_exports_its_test_part(tmp_path):
    target = str(tmp_path / "model.keras")
    model = classifier(target, (64, 64, 3))
    images = write_folder(tmp_path / "pets", 10, (48, 56, 3))  # resized to the classifier's 64x64 on reading
    workdir, zoo_dir = tmp_path / "run", tmp_path / "zoo"
    proc = attack_tool(f"--target={target}", f"--train_dir={images}", "--quick", f"--workdir={workdir}",
                       f"--zoo_dir={zoo_dir}", "--set=data.batch_size=8", "--set=generator_kwargs.filters=4",
                       "--pgd_steps=2", "--figure_examples=2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert f"on the 24 train images of {images}" in proc.stdout

    # Trained on the train part (3 steps of 8 = its 24 images), measured on the test part; both recorded.
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["data_parts"] == {"train": 24, "validation": 3, "test": 3}
    assert metrics["optimizer_steps"] == 3 and metrics["num_examples"] == 3 and metrics["split"] == "test"
    assert metrics["data_source"] == f"image_folder:{images}" and "val_adv_accuracy" in metrics
    cfg = json.loads((workdir / "config.json").read_text())
    assert cfg["data"]["dataset"] == "own" and cfg["data"]["image_shape"] == [64, 64, 3]
    assert cfg["data"]["class_names"] == list(CLASSES) and cfg["generator_kwargs"]["depth"] == 4
    split = json.loads((workdir / "data_split.json").read_text())
    members = split["members"]
    assert sorted(sum(members.values(), [])) == sorted(f"{c}/{i:02d}.png" for c in CLASSES for i in range(10))
    for part in ("validation", "test"):  # stratified: one image of each class in each held-out part
        assert sorted(path.split("/")[0] for path in members[part]) == list(CLASSES)

    # The report names the data and its split; every figure is of the test part.
    text = (workdir / "report" / "report.md").read_text()
    assert "## Attacks at L2 <= 2.4 (pets test)" in text and "| none (clean images) | 3 |" in text
    assert f"Data: {images}: 3 classes; train 24, validation 3, test 3 images" in text
    assert f"data: test part of {images}" in text and "data_split.json" in text

    # The exported generator, checked here with plain TensorFlow on the test files: within budget, as measured.
    entry = json.loads((zoo_dir / "registry.json").read_text())["pets_unet_l2_vs_model_quick"]
    assert entry["dataset"] == "own" and entry["input_shape"] == [64, 64, 3] and entry["metrics"]["num_examples"] == 3
    x, y, _, files = labelled_images(images, (64, 64, 3))
    test = [files.index(os.path.join(images, path)) for path in members["test"]]
    loaded = tf.saved_model.load(str(zoo_dir / entry["path"]))  # referenced while serving
    x_hat = loaded.serve(tf.constant(x[test])).numpy()
    assert l2_norms(x_hat, x[test]).max() <= EPS + 1e-4 and x_hat.min() >= 0 and x_hat.max() <= 1
    adv_accuracy = float(np.mean(np.argmax(model(x_hat), -1) == y[test]))
    assert entry["metrics"]["adv_accuracy"] == pytest.approx(adv_accuracy, abs=1e-6)


@pytest.mark.parametrize("shape,given", [((28, 28, 1), "rgb folder"), ((32, 32, 3), "arrays"),
                                         ((96, 96, 3), "tf.data")], ids=["28x28x1", "32x32x3", "96x96x3"])
def test_python_entry_point_trains_on_your_data_at_any_size(tmp_path, caplog, shape, given):
    target = str(tmp_path / "model.keras")
    model = classifier(target, shape)
    x, y = labelled_arrays(6, shape, seed=3)
    if given == "rgb folder":  # RGB files for a grayscale classifier: converted, with a warning
        with caplog.at_level("WARNING", logger="tfadv.data"):
            data = own.read_folder(write_folder(tmp_path / "rgb", 6, (20, 20, 3)), shape)
        assert "Converted 18 image(s)" in caplog.text
    else:
        data = (x, y) if given == "arrays" else tf.data.Dataset.from_tensor_slices((x, y)).batch(5)
    cfg = experiments.get_experiment("fashion_mnist_unet_l2")  # a 28x28 recipe: its depth is refitted
    cfg.target, cfg.epochs, cfg.steps_per_epoch, cfg.data.batch_size = target, 1, 2, 4
    cfg.generator_kwargs.update(filters=2, batch_norm=False)
    workdir = str(tmp_path / "run")
    trainer, metrics = training.run_experiment(cfg, workdir, verbose=0, data=data)

    assert metrics["data_parts"] == {"train": 12, "validation": 3, "test": 3} and metrics["optimizer_steps"] == 2
    assert metrics["l2_max"] <= EPS + 1e-4 and metrics["num_examples"] == 3
    depth = fitting_depth(shape)  # 2, 3, 4: as many 2x downsamplings as the image size takes
    assert json.load(open(os.path.join(workdir, "config.json")))["generator_kwargs"]["depth"] == depth
    generator = next(layer for layer in trainer.attacker.layers if isinstance(layer, keras.Model))
    pools = {layer.name for layer in generator.layers if layer.name.endswith("_pool")}
    assert pools == {f"down{level}_pool" for level in range(depth)}
    x_hat = trainer.attacker(x, training=False).numpy()
    assert x_hat.shape == x.shape and l2_norms(x_hat, x).max() <= EPS + 1e-4
    if given == "arrays":  # export measures the test part of the same arrays, passed again
        entry = export.export_run(workdir, "mine", zoo_dir=str(tmp_path / "zoo"), data=data)
        test = json.load(open(os.path.join(workdir, "data_split.json")))["members"]["test"]
        x_hat = trainer.attacker(x[test], training=False)
        expected = float(np.mean(np.argmax(model(x_hat), -1) == y[test]))
        assert entry["metrics"]["adv_accuracy"] == pytest.approx(expected, abs=1e-6)


def test_a_train_val_test_folder_is_used_as_given(tmp_path):
    for part, n in (("train", 4), ("val", 2), ("test", 3)):
        write_folder(tmp_path / "parts" / part, n, (8, 8, 3), seed=len(part))
    data = own.read_folder(str(tmp_path / "parts"), (8, 8, 3))
    assert data.counts() == {"train": 12, "validation": 6, "test": 9} and data.holdout is None
    assert data.class_names == CLASSES and data.spec.num_classes == 3
    assert sorted(data.members["validation"]) == sorted(f"val/{c}/{i:02d}.png" for c in CLASSES for i in range(2))
    assert own.read_folder(str(tmp_path / "parts"), (8, 8, 3)) is data  # read once per process while unchanged


def broken_folders(root):
    """Folders that are refused, each with a piece of its one-line message."""
    write_folder(root / "one", 3, (8, 8, 3))
    for i in (1, 2):
        os.remove(root / "one" / "cat" / f"{i:02d}.png")
    for part in ("train", "test"):
        write_folder(root / "no_val" / part, 2, (8, 8, 3))
    for part in ("train", "val", "test"):
        write_folder(root / "other_classes" / part, 2, (8, 8, 3))
    os.rename(root / "other_classes" / "val" / "fox", root / "other_classes" / "val" / "owl")
    (root / "empty").mkdir()
    return {"missing": (root / "nope", "does not exist"),
            "empty": (root / "empty", "has no class subfolders"),
            "one image": (root / "one", "class 'cat' has 1 image(s); holding out a validation and a test image"),
            "no val": (root / "no_val", "has train/ and test/ but no val/"),
            "other classes": (root / "other_classes", "the class folders of val/ (cat, dog, owl) differ from "
                                                      "train/'s (cat, dog, fox)")}


def test_every_problem_with_a_folder_is_one_config_error(tmp_path, caplog):
    for key, (folder, message) in broken_folders(tmp_path).items():
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
            own.read_folder(str(folder), (8, 8, 3))
        assert "\n" not in str(error.value), key
    unreadable = write_folder(tmp_path / "unreadable", 3, (8, 8, 3))
    with open(os.path.join(unreadable, "dog", "01.png"), "wb") as f:
        f.write(b"not a png")
    with pytest.raises(InputError, match=r"Cannot decode image '.*dog/01\.png'") as error:
        own.read_folder(unreadable, (8, 8, 3))
    assert "\n" not in str(error.value)
    mixed = write_folder(tmp_path / "mixed", 3, (8, 8, 3))  # mixed sizes and channels are resized and converted
    write_png(os.path.join(mixed, "cat", "09.png"), class_images(0, 1, (12, 10, 1), 5)[0])
    with caplog.at_level("WARNING"):
        data = own.read_folder(mixed, (8, 8, 3))
    assert data.part("train")[0].shape[1:] == (8, 8, 3) and sum(data.counts().values()) == 10
    assert "Resized the images of" in caplog.text and "from 12x10 (height x width) to the classifier's 8x8" in caplog.text
    assert "Converted 1 image(s)" in caplog.text
    with pytest.raises(ConfigError, match="give 1 or 3 channels; the classifier takes 4"):
        own.read_folder(write_folder(tmp_path / "ok", 3, (8, 8, 3)), (8, 8, 4))
    x, y = labelled_arrays(3, (8, 8, 3))
    with pytest.raises(InputError, match="divide by 255"):
        own.from_arrays(((x * 255).astype("uint8"), y))
    with pytest.raises(ConfigError, match="labels must be 9 integers"):
        own.from_arrays((x, y[:5]))
    with pytest.raises(ConfigError, match="class '2' has 2 example"):
        own.from_arrays((x[:8], y[:8]))


def test_the_tool_refuses_a_bad_folder_or_a_class_count_mismatch_in_one_line(tmp_path):
    target = str(tmp_path / "model.keras")
    classifier(target, (8, 8, 3))
    two = write_folder(tmp_path / "two", 3, (8, 8, 3))
    os.rename(os.path.join(two, "fox"), str(tmp_path / "fox"))  # 2 class folders for a 3-class model
    cases = {tmp_path / "nope": "does not exist",
             two: f"returns shape (3,) per batch; image folder {two} (2 class folders) needs one logit per class (2)"}
    for folder, message in cases.items():
        proc = attack_tool(f"--target={target}", f"--train_dir={folder}", "--quick", f"--workdir={tmp_path / 'run'}",
                           f"--zoo_dir={tmp_path / 'zoo'}")
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.count("Error:") == 1 and "Traceback" not in proc.stderr
        assert not os.path.exists(tmp_path / "run")  # refused before any training
