import json
import os

import pytest

from tfadv import config as config_lib
from tfadv import experiments, schema, tasks
from tfadv.errors import ConfigError

# The defended zoo entries' configs as zoo/registry.json recorded them before each defense method had its own
# settings (every method's fields flat, at the top level): the registry now holds them migrated.
LEGACY_DEFENSE_CONFIGS = os.path.join(os.path.dirname(__file__), "data", "legacy_defense_configs.json")
LEGACY_SNAPSHOT_DATE = "2026-12-06T23:12"  # when those configs were recorded and the registry migrated


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
        tasks.checked(cfg)  # values by the config, names (the model) by its task


@pytest.mark.parametrize("experiment,key,value,message", [
    ("fashion_mnist_cnn", "optimizer.learning_rate", float("inf"), "optimizer.learning_rate must be a finite number"),
    ("fashion_mnist_cnn", "optimizer.warmup_epochs", float("nan"), "optimizer.warmup_epochs must be a finite"),
    ("fashion_mnist_cnn", "optimizer.momentum", float("nan"), "optimizer.momentum must be a finite"),
    ("fashion_mnist_cnn", "optimizer.momentum", 1.5, r"optimizer.momentum must be in \[0, 1\)"),
    ("fashion_mnist_cnn", "seed", -1, r"seed must be in \[0, 4294967295\]"),
    ("fashion_mnist_unet_l2", "loss_settings.kappa", float("nan"), "loss_settings.kappa must be a finite number"),
    ("fashion_mnist_unet_l2", "loss_settings.kappa", -1.0, "loss_settings.kappa of loss 'cw' must be >= 0"),
    ("fashion_mnist_unet_l2", "loss_settings.margin", 1.0, r"Unknown setting\(s\) loss_settings.margin of loss 'cw'"),
    ("fashion_mnist_unet_joint", "magnitude_weight", float("nan"), "magnitude_weight must be a finite number"),
    ("fashion_mnist_unet_gan", "d_learning_rate", -2e-4, "d_learning_rate must be > 0"),
    ("fashion_mnist_joint_defense_linf", "settings.generator_learning_rate", -1e-3,
     "settings.generator_learning_rate must be > 0"),
    ("fashion_mnist_trades_defense_linf", "settings.beta", float("nan"), "settings.beta must be a finite number"),
    ("fashion_mnist_joint_defense_linf", "eps", float("inf"), "eps must be a finite number"),
    ("fashion_mnist_fgsm_defense_linf", "data.validation_split", None, "guard_max_drop measures held-out images"),
])
def test_validate_refuses_non_finite_and_out_of_range_numbers(experiment, key, value, message):
    """NaN passes every comparison and a negative learning rate trains a player backwards: both used to reach
    training."""
    cfg = config_lib.override(experiments.get_experiment(experiment), {key: value})
    with pytest.raises(ConfigError, match=message):
        tasks.checked(cfg)


def test_flag_combinations_that_cannot_work_are_refused_before_any_device_is_looked_for():
    cfg = config_lib.override(experiments.get_experiment("fashion_mnist_cnn"),
                              {"runtime.strategy": "tpu", "runtime.mixed_precision": True})
    with pytest.raises(ConfigError, match="drop --mixed_precision for strategy=tpu"):
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


def _stand_in_classifier(spec):
    """A tiny classifier of the dataset's shape: perturbation recipes whose target is not here still build."""
    import keras

    return keras.Sequential([keras.Input(spec.image_shape), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(spec.num_classes)])


def _without_downloads(cfg):
    """The same recipe with ImageNet weights off: nothing here can download them."""
    if getattr(cfg, "model_kwargs", {}).get("weights") == "imagenet":
        cfg.model_kwargs["weights"] = None
    if getattr(cfg, "vgg_weights", None) == "imagenet":
        cfg.vgg_weights = None
    return cfg


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_every_experiment_validates_and_builds(name):
    """Each recipe passes its own validation and builds its model or trainer at its real input shape."""
    import tensorflow as tf

    from tfadv.data import get_spec
    from tfadv.models import build_classifier
    from tfadv.tasks.defense import build_defense_trainer
    from tfadv.tasks.perturbation import build_perturbation_trainer
    from tfadv.tasks.style import build_style_network

    cfg = tasks.checked(_without_downloads(experiments.get_experiment(name)))
    if cfg.kind == "style":
        model = build_style_network(cfg)
        assert model.output_shape[1:] == (cfg.size, cfg.size, 3)
        return
    spec = get_spec(cfg.data.dataset)
    batch = tf.zeros((1,) + tuple(spec.image_shape))
    if cfg.kind == "classifier":
        model = build_classifier(cfg.model, **{"input_shape": list(spec.image_shape),
                                               "num_classes": spec.num_classes, **cfg.model_kwargs})
        assert model(batch).shape == (1, spec.num_classes)
    elif cfg.kind == "perturbation":
        classifier = _stand_in_classifier(spec)
        taps = None
        if cfg.feature_layers:  # LTP: logits and one mid-layer feature per surrogate (here, the stand-in's pooling)
            import keras

            images = keras.Input(spec.image_shape)
            pooled = classifier.layers[0](images)
            taps = keras.Model(images, [classifier.layers[1](pooled)] + [pooled] * len(cfg.feature_layers))
        trainer = build_perturbation_trainer(cfg, classifier, spec.image_shape, taps)
        assert trainer(batch).shape == batch.shape
    else:
        trainer = build_defense_trainer(cfg, spec.image_shape, spec.num_classes)
        assert trainer(batch).shape == (1, spec.num_classes)


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_every_labelled_experiment_holds_out_validation_and_test_data(name):
    cfg = experiments.get_experiment(name)
    if cfg.kind == "style":
        return
    data = cfg.data
    assert data.validation_split is not None, "validation during training must use held-out data"
    assert not schema.splits_overlap(data.train_split, data.validation_split)
    assert not schema.splits_overlap(data.validation_split, data.eval_split)


@pytest.mark.parametrize("a,b,overlap", [
    ("train", "test", False), ("train", "train[90%:]", True), ("train[:90%]", "train[90%:]", False),
    ("train[:91%]", "train[90%:]", True), ("train[:1000]", "train[1000:]", True), ("test[:10%]", "test", True),
    # Negative percentages count from the end (TFDS's slicing): these overlap on train[80%:90%].
    ("train[:-10%]", "train[-20%:]", True), ("train[:-10%]", "train[-10%:]", False),
])
def test_splits_overlap(a, b, overlap):
    assert schema.splits_overlap(a, b) is overlap
    assert schema.splits_overlap(b, a) is overlap


@pytest.mark.parametrize("key,value,message", [
    ("data.validation_split", "train[85%:]", "overlaps data.train_split"),
    ("data.validation_split", "test[:10%]", "the test split is measured once"),
    ("data.train_split", "train", "overlaps data.train_split"),
    ("data.eval_split", "train[:5%]", "data.eval_split='train\\[:5%\\]' overlaps data.train_split"),
])
def test_held_out_splits_are_refused_when_they_overlap(key, value, message):
    cfg = config_lib.override(experiments.get_experiment("fashion_mnist_cnn"), {key: value})
    with pytest.raises(ConfigError, match=message):
        cfg.validate()


def test_configs_written_before_held_out_validation_read_back_without_one():
    old = config_lib.to_dict(experiments.get_experiment("fashion_mnist_cnn"))
    old["data"] = {**old["data"], "train_split": "train"}
    del old["data"]["validation_split"]
    cfg = experiments.from_dict(old)
    assert cfg.data.validation_split is None and cfg.data.train_split == "train"
    cfg.validate()


def test_configs_written_before_the_runtime_section_read_back_into_it():
    old = config_lib.to_dict(experiments.get_experiment("fashion_mnist_unet_l2"))
    del old["runtime"]
    old.update({"strategy": "mirrored", "jit_compile": True, "mixed_precision": True})  # the old top-level fields
    cfg = experiments.from_dict(old)
    assert (cfg.runtime.strategy, cfg.runtime.jit_compile, cfg.runtime.mixed_precision) == ("mirrored", True, True)
    assert "mixed_precision" not in config_lib.to_dict(cfg)  # written back in the new shape
    with pytest.raises(ConfigError, match="strategy must be one of"):
        experiments.from_dict({**old, "strategy": "horovod"}).validate()


def test_every_kind_shares_one_runtime_section():
    kinds = {cfg.kind: cfg for cfg in map(experiments.get_experiment, experiments.EXPERIMENTS)}
    assert set(kinds) == set(schema.KINDS)
    for cfg in kinds.values():
        assert isinstance(cfg.runtime, schema.RuntimeConfig)
        assert not {"strategy", "jit_compile", "mixed_precision"} & set(config_lib.to_dict(cfg)), cfg.kind


def test_set_reaches_a_defenses_own_settings_and_the_method_checks_them():
    cfg = config_lib.override(experiments.get_experiment("fashion_mnist_pgd_defense_linf"), {"settings.steps": 3})
    assert tasks.checked(cfg).settings == {"steps": 3, "step_size": None, "adversarial_fraction": 0.5}
    with pytest.raises(ConfigError, match=r"Unknown setting\(s\) settings.beta of defense method 'pgd'; its "
                                          "settings: adversarial_fraction, steps, step_size"):
        tasks.checked(config_lib.override(cfg, {"settings.beta": 6.0}))  # TRADES' setting, not PGD's
    co_trained = experiments.get_experiment("fashion_mnist_joint_defense_linf")
    with pytest.raises(ConfigError, match=r"settings.generator, settings.generator_kwargs of defense method 'pgd'"):
        tasks.checked(config_lib.override(co_trained, {"method": "pgd"}))  # another method's settings do not carry
    assert tasks.checked(config_lib.override(co_trained, {"method": "pgd", "settings": {}})).settings["steps"] == 7
    with pytest.raises(ConfigError, match="Unknown defense method 'nope'. Known: co_trained, fgsm, pgd, trades"):
        tasks.checked(config_lib.override(cfg, {"method": "nope"}))
    cfg.validate()  # the config alone holds values, not names: a bad setting is the task's to find
    config_lib.override(cfg, {"settings.steps": 0}).validate()


def test_flat_defense_configs_of_the_zoo_read_back_into_their_methods_settings():
    """Every defended entry's config as recorded before the change (pgd, fgsm, trades, and joint: today's
    co_trained) reads back with its method's legacy fields moved into its settings and the other methods' dropped
    (the co-trained generator's ``generator_kappa`` on into ``generator_loss_settings``): the same settings its
    recipe gives today, and the same config as the migrated registry entry."""
    from tfadv import zoo

    with open(LEGACY_DEFENSE_CONFIGS) as f:
        legacy = json.load(f)
    registry = zoo.read_registry(os.path.join(os.path.dirname(os.path.dirname(__file__)), "zoo"))
    assert {config["method"] for config in legacy.values()} == {"pgd", "fgsm", "trades", "joint"}
    for name, old in legacy.items():
        assert "settings" not in old and "pgd_steps" in old, name  # the flat form
        cfg = tasks.checked(experiments.from_dict(old))
        current = tasks.checked(experiments.from_dict(registry[name]["config"]))
        if registry[name]["created"] < LEGACY_SNAPSHOT_DATE:  # migrated, not trained again since
            assert cfg == current, name
        else:  # retrained on today's recipe (data, optimizer), its method's settings the same
            assert (cfg.method, cfg.settings, cfg.guard_max_drop) == (current.method, current.settings,
                                                                      current.guard_max_drop), name
            assert current.data.train_split == "train[:90%]", name
        assert "settings" in registry[name]["config"] and "pgd_steps" not in registry[name]["config"], name
        recipe = tasks.checked(experiments.get_experiment(name.removesuffix("_generator")))
        assert (cfg.method, cfg.settings, cfg.guard_max_drop) == (recipe.method, recipe.settings,
                                                                  recipe.guard_max_drop), name
    trades = legacy["fashion_mnist_trades_defense_linf"]
    assert experiments.from_dict(trades).settings == {"steps": 10, "beta": 6.0, "step_size": None}
    with pytest.raises(ConfigError, match="pgd_stepz"):  # only the known legacy names migrate
        experiments.from_dict({**trades, "pgd_stepz": 3})
    with pytest.raises(ConfigError, match="method 'mine' has the old flat settings"):
        experiments.from_dict({**trades, "method": "mine"})


def test_a_run_folders_flat_config_json_reads_back_and_resumes_as_todays_recipe(tmp_path):
    """A killed run's config.json of the flat form is the same recipe as today's (so the run resumes), and
    ``--config`` reads it."""
    from tfadv import training

    with open(LEGACY_DEFENSE_CONFIGS) as f:
        old = json.load(f)["fashion_mnist_fgsm_defense_linf"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    cfg = tasks.checked(experiments.load_json(str(path)))
    assert (cfg.method, cfg.settings) == ("fgsm", {"adversarial_fraction": 0.5, "step_size": None})
    today = experiments.get_experiment("fashion_mnist_fgsm_defense_linf")
    today.data, today.optimizer = cfg.data, cfg.optimizer  # the data and optimizer sections gained fields since
    assert training.recipe_json(old) == training.recipe_json(config_lib.to_dict(today))
    assert training.recipe_json(old) != training.recipe_json(config_lib.to_dict(
        config_lib.override(today, {"settings.step_size": 0.05})))


def test_defense_configs_of_the_old_method_name_read_back_as_co_trained_and_resume_as_todays_recipe():
    """A config written when the co-trained defense was method "joint" (a run folder's config.json, a registry
    entry), its generator's margin in ``settings.generator_kappa``: method "co_trained", the margin in
    ``settings.generator_loss_settings``; it resumes as today's recipe, and the registry's configs were rewritten
    so. ``--set method=joint`` is refused with the new name."""
    from tfadv import training, zoo

    today = experiments.get_experiment("fashion_mnist_joint_fgsm_defense_linf")
    old = config_lib.to_dict(today)
    old["method"], old["settings"] = "joint", {**old["settings"], "generator_loss": "cw", "generator_kappa": 2.0}
    cfg = experiments.from_dict(old)
    assert cfg.method == "co_trained" and cfg.settings["generator_loss_settings"] == {"kappa": 2.0}
    assert "generator_kappa" not in cfg.settings and tasks.checked(cfg) == tasks.checked(today)
    assert training.recipe_json(old) == training.recipe_json(config_lib.to_dict(today))
    assert training.recipe_json({**old, "settings": {**old["settings"], "generator_kappa": 5.0}}) != \
        training.recipe_json(config_lib.to_dict(today))
    kept = {**old, "settings": {**old["settings"], "generator_loss_settings": {"kappa": 1.0}}}
    assert experiments.from_dict(kept).settings["generator_loss_settings"] == {"kappa": 1.0}  # already there: wins
    untargeted = {**old, "settings": {**old["settings"], "generator_loss": "untargeted"}}  # never read kappa
    assert "generator_loss_settings" not in experiments.from_dict(untargeted).settings
    assert tasks.checked(experiments.from_dict(untargeted)).settings["generator_loss_settings"] == {}
    assert experiments.from_dict({**old, "method": "pgd", "settings": {"steps": 3}}).method == "pgd"
    with pytest.raises(ConfigError, match="Defense method 'joint' was renamed 'co_trained': --set method=co_trained"):
        tasks.checked(config_lib.override(today, {"method": "joint"}))
    registry = zoo.read_registry(os.path.join(os.path.dirname(os.path.dirname(__file__)), "zoo"))
    defended = {name: entry["config"] for name, entry in registry.items() if entry["config"].get("kind") == "defense"}
    assert "joint" not in {config["method"] for config in defended.values()}
    assert not any("generator_kappa" in config["settings"] for config in defended.values())


def test_configs_with_a_top_level_kappa_read_back_with_it_in_loss_settings():
    """Perturbation configs written before losses had settings of their own carried cw's margin as a top-level
    ``kappa`` (every loss was handed it, only cw read it): it moves into ``loss_settings`` for cw and is dropped
    for the others; the run resumes as today's recipe, and the registry's configs were rewritten so."""
    from tfadv import training, zoo

    today = experiments.get_experiment("fashion_mnist_unet_joint")
    old = {key: value for key, value in config_lib.to_dict(today).items() if key != "loss_settings"}
    old["kappa"] = 3.0
    cfg = experiments.from_dict(old)
    assert cfg.loss_settings == {"kappa": 3.0} and tasks.checked(cfg) == tasks.checked(today)
    assert training.recipe_json(old) == training.recipe_json(config_lib.to_dict(today))
    assert training.recipe_json({**old, "kappa": 5.0}) != training.recipe_json(config_lib.to_dict(today))
    assert experiments.from_dict({**old, "loss_settings": {"kappa": 1.0}}).loss_settings == {"kappa": 1.0}
    for loss in ("untargeted", "least_likely", "feature_separation"):  # losses that never read kappa: dropped
        assert experiments.from_dict({**old, "loss": loss, "kappa": 2.0}).loss_settings == {}, loss
    assert experiments.from_dict({**old, "loss": "not_registered", "kappa": 0.0}).loss_settings == {}
    assert experiments.from_dict({**old, "loss": "not_registered"}).loss_settings == {"kappa": 3.0}
    with pytest.raises(ConfigError, match="Unknown config key"):  # only perturbation configs had it
        experiments.from_dict({**config_lib.to_dict(experiments.get_experiment("fashion_mnist_cnn")), "kappa": 1.0})
    registry = zoo.read_registry(os.path.join(os.path.dirname(os.path.dirname(__file__)), "zoo"))
    perturbation = {name: entry["config"] for name, entry in registry.items()
                    if entry["config"].get("kind") == "perturbation"}
    assert perturbation and not [name for name, config in perturbation.items() if "kappa" in config]
    for name, config in perturbation.items():
        if name in experiments.EXPERIMENTS:
            recipe = tasks.checked(experiments.get_experiment(name))
            assert (config["loss"], config["loss_settings"]) == (recipe.loss, recipe.loss_settings), name
