import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfadv import export, zoo
from tfadv.errors import ZooError
from tfadv.models import build_classifier


@pytest.fixture(scope="module")
def model():
    return build_classifier("small_cnn", input_shape=(28, 28, 1), num_classes=10, filters=[4, 8])


def _publish(model, zoo_dir, name="tiny", **kw):
    with zoo.staging(name, str(zoo_dir), **kw) as stage:
        export.write_classifier(stage.path, model)
        return stage.commit(kind="classifier", dataset="fashion_mnist", metrics={"accuracy": 0.5},
                            config={"model": "small_cnn"})


def test_export_serves_the_same_logits_with_plain_tensorflow(model, tmp_path):
    _publish(model, tmp_path)
    images = tf.random.uniform((5, 28, 28, 1), seed=3)
    loaded = tf.saved_model.load(str(tmp_path / "tiny"))
    np.testing.assert_allclose(loaded.serve(images), model(images, training=False), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.signatures["serving_default"](images=images)["output_0"],
                               model(images, training=False), rtol=1e-5, atol=1e-5)
    with pytest.raises((ValueError, TypeError)):
        loaded.serve(tf.zeros((1, 32, 32, 3)))  # the signature is fixed


def test_registry_entry_and_checksum(model, tmp_path):
    entry = _publish(model, tmp_path)
    registry = json.load(open(tmp_path / "registry.json"))
    assert registry["tiny"] == entry
    assert entry["sha256"] == zoo.tree_sha256(str(tmp_path / "tiny"))
    assert zoo.list(str(tmp_path)) == ["tiny"]
    loaded = zoo.load("tiny", str(tmp_path))
    assert loaded.serve(tf.zeros((2, 28, 28, 1))).shape == (2, 10)


def test_checksum_mismatch_is_refused(model, tmp_path):
    _publish(model, tmp_path)
    variables = tmp_path / "tiny" / "variables" / "variables.data-00000-of-00001"
    data = bytearray(variables.read_bytes())
    data[len(data) // 2] ^= 0xFF
    variables.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="fails its checksum"):
        zoo.load("tiny", str(tmp_path))


def test_missing_and_corrupt_savedmodels_give_clear_errors(model, tmp_path):
    _publish(model, tmp_path)
    (tmp_path / "tiny" / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ZooError, match="cannot be loaded"):
        zoo.load("tiny", str(tmp_path), check=False)
    with pytest.raises(ZooError, match="fails its checksum"):
        zoo.load("tiny", str(tmp_path))
    os.remove(tmp_path / "tiny" / "saved_model.pb")
    with pytest.raises(ZooError, match="saved_model.pb missing"):
        zoo.load("tiny", str(tmp_path))
    with pytest.raises(ZooError, match="Unknown zoo entry 'nope'. Known entries: tiny"):
        zoo.load("nope", str(tmp_path))
    (tmp_path / "registry.json").write_text("{oops")
    with pytest.raises(ZooError, match="not valid JSON"):
        zoo.list(str(tmp_path))


def test_failed_export_leaves_nothing_behind(model, tmp_path):
    _publish(model, tmp_path)
    before = zoo.tree_sha256(str(tmp_path / "tiny"))
    with pytest.raises(RuntimeError, match="crash"):
        with zoo.staging("tiny", str(tmp_path), overwrite=True) as stage:
            export.write_classifier(stage.path, model)
            raise RuntimeError("crash before commit")
    with pytest.raises(RuntimeError):
        with zoo.staging("other", str(tmp_path)) as stage:
            raise RuntimeError("crash")
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith(".registry.lock")) == ["registry.json", "tiny"]
    assert zoo.list(str(tmp_path)) == ["tiny"]
    assert zoo.tree_sha256(str(tmp_path / "tiny")) == before


def test_existing_entries_are_not_overwritten_unless_asked(model, tmp_path):
    first = _publish(model, tmp_path)
    with pytest.raises(ZooError, match="already exists"):
        _publish(model, tmp_path)
    other = build_classifier("small_cnn", input_shape=(28, 28, 1), num_classes=10, filters=[4, 8])
    second = _publish(other, tmp_path, overwrite=True)
    assert second["sha256"] != first["sha256"]
    zoo.verify("tiny", str(tmp_path))


def test_entry_names_and_kinds_are_checked(model, tmp_path):
    with pytest.raises(ZooError, match="must be lowercase"):
        with zoo.staging("Bad Name", str(tmp_path)):
            pass
    with pytest.raises(ZooError, match="unknown kind 'toaster'"):
        with zoo.staging("ok", str(tmp_path)) as stage:
            export.write_classifier(stage.path, model)
            stage.commit(kind="toaster", dataset="x", metrics={}, config={})
    assert not (tmp_path / "ok").exists()


def test_recipe_entries_without_artifacts_say_so(tmp_path):
    zoo.register("style_recipe", {"kind": "style", "dataset": "coco", "path": None, "sha256": None,
                                  "metrics": {}, "config": {}, "note": "needs ImageNet VGG weights"}, str(tmp_path))
    with pytest.raises(ZooError, match="recipe with no artifact: needs ImageNet VGG weights"):
        zoo.load("style_recipe", str(tmp_path))


KILLED_EXPORT = """
import os, signal, sys, time
from tfadv import export, zoo
from tfadv.models import build_classifier
zoo_dir, when = sys.argv[1], sys.argv[2]
model = build_classifier("small_cnn", input_shape=(28, 28, 1), num_classes=10, filters=[4, 8])
if when == "in_commit":  # die after the new SavedModel moved into place, before the registry is rewritten
    zoo._write_registry = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
with zoo.staging("tiny", zoo_dir, overwrite=True) as stage:
    export.write_classifier(stage.path, model)
    print("staged", flush=True)
    if when == "while_writing":
        time.sleep(600)
    stage.commit(kind="classifier", dataset="fashion_mnist", metrics={"accuracy": 0.1}, config={})
"""


@pytest.mark.parametrize("when", ["while_writing", "in_commit"])
def test_a_sigkilled_export_never_leaves_a_half_written_entry(model, tmp_path, when):
    import signal
    import subprocess
    import sys

    before = _publish(model, tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT, str(tmp_path), when], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if when == "while_writing":
        assert proc.stdout.readline().strip() == "staged"
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert zoo.read_registry(str(tmp_path))["tiny"] == before  # the registry never saw the killed export
    restored = zoo.recover(str(tmp_path))  # what the next export runs first
    assert restored == (["tiny"] if when == "in_commit" else [])
    assert zoo.verify("tiny", str(tmp_path))  # the old entry is whole again and passes its checksum
    assert sorted(os.listdir(tmp_path)) == [".registry.lock", "registry.json", "tiny"]  # no staging debris
