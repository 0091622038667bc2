"""Every tool's error paths: one line ``Error: ...`` naming the file or flag, exit status 2, no traceback.

Each case is an input a user gets wrong or an environment that fails; before these checks each one printed a
TensorFlow, Keras, h5py or absl traceback with exit status 1.
"""

import json
import os
import subprocess
import sys

import keras
import pytest

from tfadv import savedmodel, zoo
from tfadv.errors import ZooError
from tfadv.models import build_classifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", "CI": "1"}


def refused(tool, *args):
    """The tool's stderr's last line, after checking the one-line error style."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", f"{tool}.py"), *args], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: "), proc.stderr[-2000:]
    return last


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    """A zoo holding one small classifier; returns (zoo_dir, its SavedModel folder)."""
    zoo_dir = str(tmp_path_factory.mktemp("zoo"))
    with zoo.staging("small", zoo_dir) as stage:
        savedmodel.write_classifier(stage.path, build_classifier("small_cnn", input_shape=(28, 28, 1), num_classes=10, filters=[4, 8]))
        stage.commit(kind="classifier", dataset="fashion_mnist", metrics={"accuracy": 0.1}, config={})
    return zoo_dir, os.path.join(zoo_dir, "small")


def test_a_lambda_keras_target_names_the_file_and_the_safe_mode(tmp_path):
    path = str(tmp_path / "lambda.keras")
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2.0), keras.layers.Flatten(),
                      keras.layers.Dense(10)]).save(path)
    last = refused("attack", f"--target={path}", "--quick")
    assert f"Cannot load the target classifier {path!r}" in last and "safe mode" in last


def test_a_corrupt_savedmodel_target_names_the_folder(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "saved_model.pb").write_bytes(b"\x00not a protobuf")
    last = refused("attack", f"--target={tmp_path / 'model'}", "--quick")
    assert f"Cannot load the target classifier {str(tmp_path / 'model')!r}" in last


def test_a_binary_flagfile_is_named_as_not_text(tmp_path):
    (tmp_path / "flags.bin").write_bytes(bytes(range(256)))
    assert "A flag file is not text" in refused("train", f"--flagfile={tmp_path / 'flags.bin'}")


def test_a_registry_entry_of_unknown_kind(classifier_dir, tmp_path):
    zoo_dir, _ = classifier_dir
    forged = str(tmp_path / "zoo")
    os.makedirs(forged)
    registry = zoo.read_registry(zoo_dir)
    registry["small"]["kind"] = "toaster"
    (tmp_path / "zoo" / "registry.json").write_text(json.dumps(registry))
    assert "Zoo entry 'small': unknown kind 'toaster'" in refused("evaluate", "--zoo_name=small",
                                                                  f"--zoo_dir={forged}")


def test_stylize_on_a_savedmodel_that_is_not_a_style_network(classifier_dir, tmp_path):
    _, saved_model = classifier_dir
    image = tmp_path / "x.png"
    import tensorflow as tf

    tf.io.write_file(str(image), tf.io.encode_png(tf.zeros((8, 8, 3), tf.uint8)))
    last = refused("stylize", f"--saved_model={saved_model}", f"--content={image}", f"--style={image}",
                   f"--output={tmp_path / 'out.png'}")
    assert "is not a style network" in last and saved_model in last


@pytest.mark.parametrize("name,message", [("registry.json", "is the registry's own file name"),
                                          ("a" * 250, "at most 128 characters")])
def test_entry_names_that_cannot_be_a_zoo_folder_are_refused_before_anything_is_written(tmp_path, name, message):
    with pytest.raises(ZooError, match=message):
        with zoo.staging(name, str(tmp_path)):
            pass
    assert os.listdir(tmp_path) == []


def test_a_wrapped_exception_is_summarised_on_one_line_even_without_a_message():
    """The one-line errors quote the wrapped exception's type and first line; an empty message used to raise
    IndexError from inside the error path itself."""
    from tfadv.errors import summary

    assert summary(ValueError()) == "ValueError"
    assert summary(OSError("truncated file\nat byte 1024")) == "OSError: truncated file"
    assert summary(RuntimeError("x" * 300), 150) == "RuntimeError: " + "x" * 150
