import json

import pytest

from tfadv import config as config_lib
from tfadv import experiments
from tfadv.errors import ConfigError


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_every_experiment_round_trips_through_json(name, tmp_path):
    cfg = experiments.get_experiment(name)
    path = str(tmp_path / "config.json")
    config_lib.save_json(cfg, path)
    assert experiments.load_json(path) == cfg
    assert json.load(open(path))["kind"] == cfg.kind


def test_override_sets_nested_fields_and_free_form_dict_keys():
    cfg = experiments.get_experiment("fashion_mnist_cnn")
    new = config_lib.override(cfg, {"epochs": 3, "data.batch_size": 64, "model_kwargs.dropout": 0.2,
                                    "optimizer.learning_rate": 1})
    assert (new.epochs, new.data.batch_size, new.model_kwargs["dropout"]) == (3, 64, 0.2)
    assert new.optimizer.learning_rate == 1.0 and isinstance(new.optimizer.learning_rate, float)
    assert cfg.epochs != 3, "override must not mutate the original"


@pytest.mark.parametrize("key,value,message", [
    ("epoch", 3, "Unknown config key 'epoch'"),
    ("data.batchsize", 3, "data.batchsize"),
    ("epochs", "three", "epochs must be int"),
    ("data.augment", 1, "data.augment must be bool"),
    ("epochs.x", 1, "is not an object"),
])
def test_override_rejects_unknown_keys_and_wrong_types(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        config_lib.override(experiments.get_experiment("fashion_mnist_cnn"), {key: value})


def test_parse_override_reads_json_values_and_bare_strings():
    assert config_lib.parse_override("epochs=3") == ("epochs", 3)
    assert config_lib.parse_override("model=small_cnn") == ("model", "small_cnn")
    assert config_lib.parse_override("model_kwargs.filters=[8,16]") == ("model_kwargs.filters", [8, 16])
    with pytest.raises(ConfigError, match="key=value"):
        config_lib.parse_override("epochs")


@pytest.mark.parametrize("key,value,message", [
    ("epochs", 0, "epochs must be > 0"),
    ("data.batch_size", -1, "batch_size must be > 0"),
    ("data.dataset", "svhn", "Unknown dataset 'svhn'"),
    ("optimizer.learning_rate", 0.0, "learning_rate must be > 0"),
    ("model", "lenet", "Unknown model 'lenet'"),
    ("label_smoothing", 1.5, "label_smoothing"),
])
def test_validate_rejects_bad_values_with_the_value_named(key, value, message):
    cfg = config_lib.override(experiments.get_experiment("fashion_mnist_cnn"), {key: value})
    with pytest.raises(ConfigError, match=message):
        cfg.validate()


def test_unreadable_or_invalid_config_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="Cannot read config file"):
        experiments.load_json(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        experiments.load_json(str(bad))
    bad.write_text('{"kind": "classifier", "epochz": 3}')
    with pytest.raises(ConfigError, match="epochz"):
        experiments.load_json(str(bad))
    bad.write_text('{"kind": "gan"}')
    with pytest.raises(ConfigError, match="Unknown experiment kind 'gan'"):
        experiments.load_json(str(bad))
