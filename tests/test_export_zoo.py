import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv import export, savedmodel, zoo
from tfadv.errors import ZooError
from tfadv.models import build_classifier


@pytest.fixture(scope="module")
def model():
    return build_classifier("small_cnn", input_shape=(28, 28, 1), num_classes=10, filters=[4, 8])


def _publish(model, zoo_dir, name="tiny", **kw):
    with zoo.staging(name, str(zoo_dir), **kw) as stage:
        savedmodel.write_classifier(stage.path, model)
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


def test_export_stores_each_weight_once_and_tfsmlayer_still_sees_them(model, tmp_path):
    """keras-team/keras#23553: ExportArchive wrote every weight twice (variables/ and _all_variables/)."""
    _publish(model, tmp_path)
    path = str(tmp_path / "tiny")
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    stored = sum(int(np.prod(shape)) for key, shape in reader.get_variable_to_shape_map().items()
                 if key != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert stored == model.count_params()
    layer = keras.layers.TFSMLayer(path, call_endpoint="serve")
    assert sum(int(np.prod(w.shape)) for w in layer.weights) == model.count_params()
    images = tf.random.uniform((3, 28, 28, 1), seed=4)
    np.testing.assert_allclose(layer(images), model(images, training=False), rtol=1e-5, atol=1e-5)


def test_registry_entry_and_checksum(model, tmp_path):
    entry = _publish(model, tmp_path)
    registry = json.load(open(tmp_path / "registry.json"))
    assert registry["tiny"] == entry
    assert entry["sha256"] == zoo.tree_sha256(str(tmp_path / "tiny"))
    assert zoo.names(str(tmp_path)) == ["tiny"]
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
        zoo.names(str(tmp_path))


def test_failed_export_leaves_nothing_behind(model, tmp_path):
    _publish(model, tmp_path)
    before = zoo.tree_sha256(str(tmp_path / "tiny"))
    with pytest.raises(RuntimeError, match="crash"):
        with zoo.staging("tiny", str(tmp_path), overwrite=True) as stage:
            savedmodel.write_classifier(stage.path, model)
            raise RuntimeError("crash before commit")
    with pytest.raises(RuntimeError):
        with zoo.staging("other", str(tmp_path)) as stage:
            raise RuntimeError("crash")
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith(".registry.lock")) == ["registry.json", "tiny"]
    assert zoo.names(str(tmp_path)) == ["tiny"]
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
            savedmodel.write_classifier(stage.path, model)
            stage.commit(kind="toaster", dataset="x", metrics={}, config={})
    assert not (tmp_path / "ok").exists()


def test_recipe_entries_without_artifacts_say_so(tmp_path):
    zoo.register("style_recipe", {"kind": "style", "dataset": "coco", "path": None, "sha256": None,
                                  "metrics": {}, "config": {}, "note": "needs ImageNet VGG weights"}, str(tmp_path))
    with pytest.raises(ZooError, match="recipe with no artifact: needs ImageNet VGG weights"):
        zoo.load("style_recipe", str(tmp_path))


KILLED_EXPORT = """
import sys
from tfadv import savedmodel, zoo
from tfadv.models import build_classifier
zoo_dir, name = sys.argv[1], sys.argv[2]
model = build_classifier("small_cnn", input_shape=(28, 28, 1), num_classes=10, filters=[4, 8])
with zoo.staging(name, zoo_dir, overwrite=True) as stage:
    savedmodel.write_classifier(stage.path, model)
    stage.commit(kind="classifier", dataset="fashion_mnist", metrics={"accuracy": 0.1}, config={})
"""
KILL_POINTS = {"while_writing": "zoo.staged",  # the SavedModel is written in its staging folder
               "in_commit": "zoo.moved_in"}  # it moved into place, the registry is not rewritten yet


def _killed_export(zoo_dir, when, name):
    import signal
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(zoo_dir), name], timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_FAULT": KILL_POINTS[when]})
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("when", ["while_writing", "in_commit"])
def test_a_sigkilled_export_never_leaves_a_half_written_entry(model, tmp_path, when):
    before = _publish(model, tmp_path)
    _killed_export(tmp_path, when, "tiny")
    assert zoo.read_registry(str(tmp_path))["tiny"] == before  # the registry never saw the killed export
    restored = zoo.recover(str(tmp_path))  # what the next export runs first
    assert restored == (["tiny"] if when == "in_commit" else [])
    assert zoo.verify("tiny", str(tmp_path))  # the old entry is whole again and passes its checksum
    assert sorted(os.listdir(tmp_path)) == [".registry.lock", "registry.json", "tiny"]  # no staging debris


def test_a_sigkilled_first_export_leaves_no_orphan_and_the_next_export_succeeds(model, tmp_path):
    before = _publish(model, tmp_path)
    _killed_export(tmp_path, "in_commit", "fresh")  # killed after zoo/fresh appeared, before it was registered
    assert (tmp_path / "fresh" / "saved_model.pb").exists()  # the kill hit the window this test is about
    assert zoo.read_registry(str(tmp_path)) == {"tiny": before}
    assert zoo.recover(str(tmp_path)) == []
    assert sorted(os.listdir(tmp_path)) == [".registry.lock", "registry.json", "tiny"]  # orphan and debris gone
    entry = _publish(model, tmp_path, name="fresh")  # not refused with "already exists"
    assert zoo.verify("fresh", str(tmp_path)) and entry["sha256"] == zoo.tree_sha256(str(tmp_path / "fresh"))
    assert zoo.read_registry(str(tmp_path))["tiny"] == before


def test_recover_leaves_a_folder_it_did_not_move_in(model, tmp_path):
    """A journal only licenses removing the tree its commit moved in, not whatever sits at zoo/NAME."""
    _publish(model, tmp_path)
    stage = tmp_path / ".other.tmp-999999999-x"  # a dead process's staging folder, journal for another tree
    stage.mkdir()
    (stage / zoo.JOURNAL).write_text(json.dumps({"name": "other", "sha256": "0" * 64}))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("not an export")
    assert zoo.recover(str(tmp_path)) == []
    assert (tmp_path / "other" / "mine.txt").exists() and not stage.exists()


def _unguarded_entry(zoo_dir, idx_dir, name, fn, track, kind, extra_endpoints=(), **fields):
    """An entry as exported before serve checked its input: no guard, measured figures recorded."""
    import keras

    from tfadv import data as data_lib
    from tfadv import evaluation

    with zoo.staging(name, str(zoo_dir)) as stage:
        archive = keras.export.ExportArchive()
        archive.track(track)
        archive.add_endpoint("serve", fn, input_signature=[savedmodel.image_spec((28, 28, 1))])
        for endpoint, endpoint_fn in extra_endpoints:
            archive.add_endpoint(endpoint, endpoint_fn, input_signature=[])
        archive.write_out(stage.path, verbose=False)
        loaded = tf.saved_model.load(stage.path)
        ds, info = data_lib.load("fashion_mnist", "test", batch_size=256, source="idx", idx_dir=idx_dir)
        if kind == "classifier":
            measured = evaluation.evaluate_classifier(loaded.serve, ds)
        else:
            measured = evaluation.measure_attack(loaded.serve, zoo.load(fields["target"], str(zoo_dir)).serve, ds,
                                                 confusion=kind == "universal")
        metrics = {**export._rounded(measured), "split": "test", "data_source": f"{info.source}:{info.location}"}
        return stage.commit(kind=kind, dataset="fashion_mnist", metrics=metrics, config={}, input_shape=[28, 28, 1],
                            selection=dict(export.TEST_SELECTED), **fields)


def _refuses(serve, batch, words):
    with pytest.raises(tf.errors.InvalidArgumentError) as refused:
        serve(tf.constant(batch))
    assert all(word in str(refused.value) for word in words), str(refused.value)[:300]


def test_reguard_wraps_old_entries_behind_the_input_guard_without_changing_them(model, tmp_path, idx_dir):
    zoo_dir = tmp_path / "zoo"
    old_cls = _unguarded_entry(zoo_dir, idx_dir, "cls", lambda x: model(x, training=False), model, "classifier",
                               created="2020-01-01T00:00:00Z")
    shift = tf.Module()
    shift.u = tf.Variable(tf.fill((1, 28, 28, 1), 0.05))
    old_att = _unguarded_entry(zoo_dir, idx_dir, "uap", lambda x: tf.clip_by_value(x + shift.u, 0.0, 1.0), shift,
                               "universal", extra_endpoints=[("perturbation", lambda: shift.u)], target="cls",
                               created="2020-01-01T00:00:00Z")
    images = tf.random.uniform((3, 28, 28, 1), seed=1)
    before = {n: tf.saved_model.load(str(zoo_dir / n)) for n in ("cls", "uap")}
    before["uap"].serve(images * 255)  # the old artifacts accept 0-255 pixels: what re-guarding fixes

    for name, old in (("cls", old_cls), ("uap", old_att)):
        entry = export.reguard(name, str(zoo_dir), idx_dir=idx_dir)
        assert entry["sha256"] != old["sha256"] and entry["sha256"] == zoo.tree_sha256(str(zoo_dir / name))
        assert entry["created"] == old["created"] and entry["metrics"] == old["metrics"]
        assert entry["reexported"]["why"] == "in-graph input guard"
        assert entry["reexported"]["command"] == f"python tools/reguard.py --name={name}"
        assert entry["reexported"]["previous_sha256"] == old["sha256"]
        assert {k: v for k, v in entry.items() if k not in ("sha256", "reexported")} == \
            {k: v for k, v in old.items() if k != "sha256"}
        loaded = tf.saved_model.load(str(zoo_dir / name))
        assert set(loaded.signatures) == set(before[name].signatures)  # every endpoint kept
        assert np.array_equal(loaded.serve(images), before[name].serve(images))  # bit for bit
        _refuses(loaded.serve, images.numpy() * 255, ["above 1", "divide by 255"])
        _refuses(loaded.serve, np.full((2, 28, 28, 1), np.nan, "float32"), ["NaN"])
        _refuses(loaded.signatures["serving_default"], np.zeros((0, 28, 28, 1), "float32"), ["empty batch"])
    assert np.array_equal(tf.saved_model.load(str(zoo_dir / "uap")).perturbation(), shift.u.numpy())
    assert sorted(os.listdir(zoo_dir)) == [".registry.lock", "cls", "registry.json", "uap"]  # no staging debris


def test_reguard_replaces_nothing_when_a_figure_differs(model, tmp_path, idx_dir):
    zoo_dir = tmp_path / "zoo"
    _unguarded_entry(zoo_dir, idx_dir, "cls", lambda x: model(x, training=False), model, "classifier")
    registry = zoo.read_registry(str(zoo_dir))
    registry["cls"]["metrics"]["accuracy"] += 0.01  # as if the artifact no longer matched its figures
    zoo._write_registry(str(zoo_dir), registry)
    with pytest.raises(ZooError, match="measures differently .*'accuracy'"):
        export.reguard("cls", str(zoo_dir), idx_dir=idx_dir)
    assert zoo.read_registry(str(zoo_dir)) == registry
    zoo.verify("cls", str(zoo_dir))  # the old artifact is untouched
    assert sorted(os.listdir(zoo_dir)) == [".registry.lock", "cls", "registry.json"]


def test_selection_names_the_split_that_chose_the_recipe():
    from types import SimpleNamespace

    held_out = SimpleNamespace(kind="classifier", data=SimpleNamespace(validation_split="train[90%:]"))
    assert export.selection(held_out) == {"split": "train[90%:]",
                                          "what": "validation during training, recipe and epoch choice"}
    older = SimpleNamespace(kind="perturbation", data=SimpleNamespace(eval_split="test"))  # no validation_split
    assert export.selection(older) == export.TEST_SELECTED and "test split" in export.TEST_SELECTED["note"]
    assert export.selection(SimpleNamespace(kind="style"))["split"] is None


def test_selection_of_a_run_that_validated_on_nothing(tmp_path):
    from types import SimpleNamespace

    cfg = SimpleNamespace(kind="classifier", data=SimpleNamespace(validation_split=None))
    (tmp_path / "config.json").write_text(json.dumps({"data": {"validation_split": None}}))
    assert export.selection(cfg, str(tmp_path))["split"] is None  # said so: nothing was validated on
    (tmp_path / "config.json").write_text(json.dumps({"data": {"eval_split": "test"}}))
    assert export.selection(cfg, str(tmp_path)) == export.TEST_SELECTED  # written before the field existed


def test_export_run_records_selection(model, tmp_path, idx_dir):
    from tfadv import config as config_lib
    from tfadv import experiments

    cfg = experiments.get_experiment("fashion_mnist_cnn")
    cfg.data.source, cfg.data.idx_dir = "idx", idx_dir
    workdir = tmp_path / "run"
    workdir.mkdir()
    config_lib.save_json(cfg, str(workdir / "config.json"))
    model.save(str(workdir / "model.keras"))
    entry = export.export_run(str(workdir), "run_entry", zoo_dir=str(tmp_path / "zoo"))
    assert entry["selection"] == {"split": "train[90%:]",
                                  "what": "validation during training, recipe and epoch choice"}


def test_a_new_defense_table_keeps_the_autoattack_column_and_replaces_its_own(model, tmp_path):
    from tfadv import defense_report

    _publish(model, tmp_path)
    settings = {"norm": "linf", "eps": 0.1}
    defense_report.record([{"classifier": "tiny", "clean": 0.9, "pgd100x2": 0.5, "transfer:old": 0.8}],
                          settings, str(tmp_path))
    zoo.add_metrics("tiny", {"robustness_linf_0.1": {**zoo.entry("tiny", str(tmp_path))["metrics"][
        "robustness_linf_0.1"], "autoattack": {"robust_accuracy": 0.45}}}, str(tmp_path))
    defense_report.record([{"classifier": "tiny", "clean": 0.9, "pgd100x2": 0.4, "seconds": 3.0}], settings,
                          str(tmp_path))
    table = zoo.entry("tiny", str(tmp_path))["metrics"]["robustness_linf_0.1"]
    assert table == {"clean": 0.9, "pgd100x2": 0.4, "autoattack": {"robust_accuracy": 0.45}, "settings": settings}


def _forge(zoo_dir, name, **changes):
    """Edits entry ``name`` in the registry as someone with write access to it could."""
    registry = zoo.read_registry(str(zoo_dir))
    registry[name].update(changes)
    (zoo_dir / "registry.json").write_text(json.dumps(registry))


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink"])
def test_a_registry_path_leading_outside_the_zoo_is_refused(model, tmp_path, where):
    """Whoever can edit the registry can also write the matching checksum: only confinement stops an entry from
    loading a model from anywhere on the machine."""
    zoo_dir, outside = tmp_path / "zoo", tmp_path / "outside"
    _publish(model, zoo_dir)
    shutil.copytree(zoo_dir / "tiny", outside)
    path = {"absolute": str(outside), "dotdot": "../outside", "symlink": "link"}[where]
    if where == "symlink":
        os.symlink(outside, zoo_dir / "link")
    _forge(zoo_dir, "tiny", path=path, sha256=zoo.tree_sha256(str(outside)))
    message = "must be a folder relative to the zoo" if where == "absolute" else "leads outside the zoo"
    for load in (zoo.load, zoo.keras_layer, zoo.verify):
        with pytest.raises(ZooError, match=message):
            load("tiny", str(zoo_dir))


def test_an_entrys_file_target_loads_only_with_its_recorded_checksum(model, tmp_path, idx_dir):
    from tfadv import evaluation, targets

    target = tmp_path / "their_classifier.keras"
    model.save(target)
    _publish(model, tmp_path / "zoo", name="attack")
    zoo_dir = tmp_path / "zoo"
    _forge(zoo_dir, "attack", kind="perturbation", target=str(target))
    with pytest.raises(ZooError, match="records no checksum for it: loading it would run unverified code"):
        targets.load_entry_target("attack", str(zoo_dir))
    with pytest.raises(ZooError, match="records no checksum"):  # what tfadv-evaluate --zoo_name=attack runs
        evaluation.evaluate_zoo_entry("attack", str(zoo_dir), source="idx", idx_dir=idx_dir)
    _forge(zoo_dir, "attack", target_sha256="0" * 64)
    with pytest.raises(ZooError, match="fails the recorded checksum"):
        targets.load_entry_target("attack", str(zoo_dir))
    _forge(zoo_dir, "attack", target_sha256=targets.target_sha256(str(target), str(zoo_dir)))
    images = tf.random.uniform((3, 28, 28, 1), seed=1)
    np.testing.assert_allclose(targets.load_entry_target("attack", str(zoo_dir))(images), model(images), atol=1e-6)
    assert targets.target_sha256("attack", str(zoo_dir)) is None  # a zoo entry is verified by the zoo instead


def test_a_reader_after_a_killed_commit_gets_the_old_entry_not_a_checksum_error(model, tmp_path):
    before = _publish(model, tmp_path)
    _killed_export(tmp_path, "in_commit", "tiny")  # the new SavedModel sits at zoo/tiny, the registry says old
    assert zoo.verify("tiny", str(tmp_path))  # the reader ran recover() itself: the old entry is back
    assert zoo.read_registry(str(tmp_path))["tiny"] == before
    assert sorted(os.listdir(tmp_path)) == [".registry.lock", "registry.json", "tiny"]


def test_recover_tells_a_dead_export_by_its_lock_not_by_a_reused_process_id(model, tmp_path):
    _publish(model, tmp_path)
    reused = tmp_path / f".other.tmp-{os.getpid()}-x"  # a dead export whose pid now belongs to a live process
    reused.mkdir()
    (reused / zoo.ALIVE).write_text("")
    (tmp_path / ".registry.k2j4.tmp").write_text("{")  # a registry rewrite killed before its rename
    with zoo.staging("live", str(tmp_path)) as stage:  # a live export in this very process keeps its folder
        zoo.recover(str(tmp_path))
        assert os.path.isdir(stage.path.rsplit("/", 1)[0])
    assert sorted(os.listdir(tmp_path)) == [".registry.lock", "registry.json", "tiny"]
