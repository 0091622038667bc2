"""What users extend has one registration point each: a throwaway generator, loss (one with a setting of its own),
attack, defense and dataset are registered here (as a user would in their own module) and then found by name by
the configs, the runner, the attacks and the data loader, with no other file touched."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv import attacks, experiments, losses, tasks, training, universal_attacks
from tfadv import config as config_lib
from tfadv.data import catalog
from tfadv.errors import ConfigError, DataUnavailableError
from tfadv.schema import DataConfig, DefenseExperiment
from tfadv.models import generators
from tfadv.trainers import defense
from tfadv.trainers.defense.base import DefenseTrainer, MixedSettings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def registered():
    """Registers through the public decorators and removes the entries afterwards (other tests see the stock
    registries)."""
    added = []

    def add(registry, name):
        added.append((registry, name))

    yield add
    for registry, name in added:
        registry.pop(name, None)


def test_a_new_loss_is_found_by_configs_attacks_and_trainers(registered):
    @losses.register_loss("negative_margin_squared", target="none")
    def _margin(logits, labels, **_):
        top_other = tf.reduce_max(tf.where(tf.one_hot(labels, tf.shape(logits)[-1]) > 0, -1e9, logits), -1)
        return tf.square(tf.nn.relu(tf.gather(logits, labels, batch_dims=1) - top_other))

    registered(losses.LOSSES, "negative_margin_squared")
    cfg = experiments.get_experiment("fashion_mnist_unet_l2")
    cfg.loss, cfg.loss_settings = "negative_margin_squared", {}  # the recipe's are cw's: a loss's own do not carry
    tasks.checked(cfg)  # the task checking the config's names finds it
    logits = tf.constant([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0]])
    value = losses.adversarial_loss("negative_margin_squared", logits, tf.constant([0, 2]))
    np.testing.assert_allclose(value.numpy(), [4.0, 9.0])
    with pytest.raises(ConfigError, match="target_class is only used by"):
        losses.check_loss("negative_margin_squared", 1)
    x = tf.random.stateless_uniform((2, 4, 4, 1), (0, 1))
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    x_adv = attacks.pgd(model, x, tf.constant([0, 1]), eps=0.1, steps=2, loss="negative_margin_squared")
    assert float(tf.reduce_max(tf.abs(x_adv - x))) <= 0.1 + 1e-6


@dataclasses.dataclass(frozen=True)
class MarginPowerSettings:
    """The throwaway loss's own setting: the power its positive margin is raised to."""

    power: float = 2.0

    def __post_init__(self):
        if not self.power >= 1:
            raise ConfigError(f"loss_settings.power of loss 'margin_power' must be >= 1. Received: {self.power!r}")


SEEN_POWERS = []


def margin_power(logits, labels, *, power, **_):
    """``relu(z_y - max_{j!=y} z_j) ** power``: the throwaway loss with a setting of its own."""
    SEEN_POWERS.append(power)  # at trace time under tf.function: which value reached the loss
    top_other = tf.reduce_max(tf.where(tf.one_hot(labels, tf.shape(logits)[-1]) > 0, -1e9, logits), -1)
    return tf.nn.relu(tf.gather(logits, labels, batch_dims=1) - top_other) ** power


def test_a_new_loss_with_its_own_setting_is_one_registration(registered):
    """A loss with a hyperparameter no other loss has: its settings dataclass and its function live here (the test
    module stands in for the user's own); configs give it in ``loss_settings`` (``--set loss_settings.power=3``),
    the perturbation task checks and completes it, and it reaches the loss through adversarial_loss, the
    attacks and the trainer. No library file names it."""
    losses.register_loss("margin_power", settings=MarginPowerSettings)(margin_power)
    registered(losses.LOSSES, "margin_power")
    cfg = config_lib.override(experiments.get_experiment("fashion_mnist_unet_l2"),
                              {"loss": "margin_power", "loss_settings": {"power": 3.0}})
    assert tasks.checked(cfg).loss_settings == {"power": 3.0}
    assert tasks.checked(config_lib.override(cfg, {"loss_settings": {}})).loss_settings == {"power": 2.0}
    assert tasks.checked(config_lib.override(cfg, {"loss_settings.power": 4})).loss_settings == {"power": 4.0}
    with pytest.raises(ConfigError, match=r"Unknown setting\(s\) loss_settings.kappa of loss 'margin_power'; its "
                                          "settings: power"):
        tasks.checked(config_lib.override(cfg, {"loss_settings.kappa": 5.0}))  # cw's, not this loss's
    with pytest.raises(ConfigError, match="loss_settings.power of loss 'margin_power' must be >= 1. Received: 0.5"):
        tasks.checked(config_lib.override(cfg, {"loss_settings.power": 0.5}))
    with pytest.raises(ConfigError, match="loss_settings.power must be a finite number"):
        tasks.checked(config_lib.override(cfg, {"loss_settings.power": float("nan")}))
    cfg.validate()  # the config alone holds values, not names: a bad setting is the task's to find
    config_lib.override(cfg, {"loss_settings.power": 0.5}).validate()

    logits, labels = tf.constant([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0]]), tf.constant([0, 2])  # margins 2 and 3
    np.testing.assert_allclose(losses.adversarial_loss("margin_power", logits, labels, settings={"power": 3.0}),
                               [8.0, 27.0])
    np.testing.assert_allclose(losses.adversarial_loss("margin_power", logits, labels), [4.0, 9.0])  # the default
    with pytest.raises(ConfigError, match="Unknown setting"):
        losses.adversarial_loss("margin_power", logits, labels, settings={"powr": 3.0})

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    x = tf.random.stateless_uniform((2, 4, 4, 1), (0, 1))
    SEEN_POWERS.clear()
    attacks.pgd(model, x, tf.constant([0, 1]), eps=0.1, steps=2, loss="margin_power", loss_settings={"power": 3.0})
    assert SEEN_POWERS and set(SEEN_POWERS) == {3.0}
    SEEN_POWERS.clear()
    ds = tf.data.Dataset.from_tensor_slices((x, tf.constant([0, 1]))).batch(2)
    universal_attacks.universal_sgd(model, ds, eps=0.5, epochs=1, loss="margin_power", loss_settings={"power": 1.5})
    assert SEEN_POWERS and set(SEEN_POWERS) == {1.5}
    with pytest.raises(ConfigError, match="must be >= 1"):
        attacks.pgd(model, x, tf.constant([0, 1]), eps=0.1, loss="margin_power", loss_settings={"power": 0.0})

    from tfadv.tasks.perturbation import build_perturbation_trainer

    cfg.generator_kwargs = {"depth": 1, "filters": 4}
    classifier = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    trainer = build_perturbation_trainer(tasks.checked(cfg), classifier, (28, 28, 1))
    SEEN_POWERS.clear()
    images = tf.random.stateless_uniform((2, 28, 28, 1), (0, 2))
    trainer.generator_loss(images, trainer(images), tf.constant([0, 1]), classifier(images))
    assert SEEN_POWERS == [3.0] and trainer.get_config()["loss_settings"] == {"power": 3.0}

    library = [os.path.join(root, name) for top in ("tfadv", "tools")
               for root, _, names in os.walk(os.path.join(ROOT, top)) for name in names
               if name.endswith((".py", ".sh", ".json"))]
    assert len(library) > 50 and [path for path in library if "margin_power" in open(path).read()] == []


def test_a_new_attack_is_found_by_name(registered):
    @attacks.register_attack("sign_of_noise")
    def _noise(classifier, x, labels, *, eps, norm="linf", seed=0, **_):
        return tf.clip_by_value(x + eps * tf.sign(tf.random.stateless_normal(tf.shape(x), (seed, 0))), 0.0, 1.0)

    registered(attacks.ATTACKS, "sign_of_noise")
    x = tf.fill((2, 4, 4, 1), 0.5)
    x_adv = attacks.get_attack("sign_of_noise")(None, x, tf.constant([0, 1]), eps=0.1)
    np.testing.assert_allclose(np.abs(x_adv.numpy() - 0.5), 0.1, rtol=1e-5)
    with pytest.raises(ConfigError, match="Unknown attack 'nope'. Known: .*sign_of_noise"):
        attacks.get_attack("nope")


def test_a_new_generator_trains_a_co_trained_defense_through_the_runner(registered, idx_dir, tmp_path):
    @generators.register_generator("one_conv")
    def _one_conv(input_shape=(28, 28, 1), out_channels=None, output_activation="tanh", name="one_conv", **_):
        inputs = keras.Input(input_shape)
        out = keras.layers.Conv2D(out_channels or input_shape[-1], 3, padding="same", activation=output_activation,
                                  dtype="float32")(inputs)
        return keras.Model(inputs, out, name=name)

    registered(generators.GENERATORS, "one_conv")
    cfg = experiments.get_experiment("fashion_mnist_joint_defense_linf")
    cfg.settings = {"generator": "one_conv"}  # the generator, by name, in the co_trained method's own settings
    cfg.data.idx_dir, cfg.data.batch_size, cfg.epochs, cfg.steps_per_epoch = idx_dir, 16, 1, 2
    cfg.model_kwargs = {"filters": [[4], [8]], "head": "gap"}
    _, co_trained = training.run_experiment(cfg, str(tmp_path / "co_trained"), verbose=0)
    assert co_trained["optimizer_steps"] == 2 and co_trained["g_optimizer_steps"] == 2

    @defense.register_defense("co_trained_by_another_name", settings=defense.CoTrainedSettings,
                              label="co-trained, renamed", co_trained_generator=True)
    def _co_trained_again(cfg, settings, classifier, image_shape):
        return defense.DEFENSES["co_trained"].build(cfg, settings, classifier, image_shape)

    registered(defense.DEFENSES, "co_trained_by_another_name")
    cfg.method = "co_trained_by_another_name"  # generator-based: its run saves the generator, export publishes it
    cfg.epochs, cfg.steps_per_epoch = 1, 1
    training.run_experiment(cfg, str(tmp_path / "again"), verbose=0)
    assert (tmp_path / "again" / "attacker.keras").exists()
    assert [c.suffix for c in tasks.get_task("defense").companions(cfg)] == ["_generator"]


@dataclasses.dataclass
class UniformNoiseSettings(MixedSettings):
    """The throwaway method's own setting: the noise's size, as a share of the budget's eps."""

    noise_scale: float = 1.0

    def validate(self):
        super().validate()
        if not 0 < self.noise_scale <= 1:
            raise ConfigError(f"settings.noise_scale must be in (0, 1]. Received: {self.noise_scale!r}")

    def training_attack(self):
        return f"uniform noise of {self.noise_scale:g} eps"


class UniformNoiseTrainer(DefenseTrainer):
    """Trains on uniform L-inf noise of ``noise_scale`` * eps: a (weak) defense, for the registry test."""

    def __init__(self, classifier, eps, noise_scale, adversarial_fraction=0.5, **kwargs):
        super().__init__(classifier, adversarial_fraction, **kwargs)
        self.eps, self.noise_scale = float(eps), float(noise_scale)

    def adversarial(self, x, labels):
        noise = tf.random.uniform(tf.shape(x), -1.0, 1.0) * self.eps * self.noise_scale
        return tf.clip_by_value(x + noise, 0.0, 1.0)


def build_uniform_noise(cfg, settings, classifier, image_shape):
    return UniformNoiseTrainer(classifier, cfg.eps, settings.noise_scale,
                               adversarial_fraction=settings.adversarial_fraction)


def test_a_new_defense_with_its_own_setting_is_one_module(registered, tmp_path):
    """A defense method with a setting no other method has: its settings, trainer and registration live here (the
    test module stands in for the user's own), it trains a step through the runner reading its setting from
    ``settings``, benchmark tables name it by its registered label, and no library file names it."""
    defense.register_defense("uniform_noise", settings=UniformNoiseSettings,
                             label="uniform noise augmentation")(build_uniform_noise)
    registered(defense.DEFENSES, "uniform_noise")
    cfg = DefenseExperiment(method="uniform_noise", settings={"noise_scale": 0.25}, norm="linf", eps=0.1,
                            model_kwargs={"filters": [[4]], "head": "gap"}, data=DataConfig(batch_size=8),
                            epochs=1, steps_per_epoch=1)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(40, 8, 8, 1)).astype("float32"), np.arange(40) % 2
    trainer, metrics = training.run_experiment(cfg, str(tmp_path / "run"), data=(x, y), verbose=0)
    assert isinstance(trainer, UniformNoiseTrainer) and trainer.noise_scale == 0.25
    assert metrics["optimizer_steps"] == 1 and 0 < metrics["linf_max"] <= 0.025 + 1e-6  # 0.25 * eps
    recorded = experiments.load_json(str(tmp_path / "run" / "config.json"))
    assert recorded.settings == {"noise_scale": 0.25, "adversarial_fraction": 0.5}  # complete, with its default
    assert defense.describe(cfg) == ("uniform noise augmentation", "uniform noise of 0.25 eps")
    with pytest.raises(ConfigError, match=r"settings.noise_scale must be in \(0, 1\]. Received: 2"):
        tasks.checked(config_lib.override(cfg, {"settings.noise_scale": 2}))
    with pytest.raises(ConfigError, match="Unknown defense method 'unknown_defense'. Known: .*uniform_noise"):
        tasks.checked(config_lib.override(cfg, {"method": "unknown_defense"}))
    library = [os.path.join(root, name) for top in ("tfadv", "tools")
               for root, _, names in os.walk(os.path.join(ROOT, top)) for name in names
               if name.endswith((".py", ".sh", ".json"))]
    touched = [path for path in library if "uniform_noise" in open(path).read()]
    assert len(library) > 50 and touched == []


def test_a_new_dataset_loads_by_name(registered, idx_dir):
    from tfadv import data as data_lib

    catalog.register_dataset(catalog.DatasetSpec("brightness_digits", (28, 28, 1), 10, local_idx_dirs=(idx_dir,),
                                                 class_names=tuple("abcdefghij")))
    registered(catalog.DATASETS, "brightness_digits")
    ds, info = data_lib.load("brightness_digits", "test", batch_size=16, source="idx")
    x, y = next(iter(ds))
    assert x.shape == (16, 28, 28, 1) and info.source == "idx" and info.num_examples == 48
    cfg = experiments.get_experiment("fashion_mnist_unet_l2")
    cfg.data.dataset = "brightness_digits"
    cfg.validate()
    with pytest.raises(ValueError, match="registered twice"):
        catalog.register_dataset(catalog.DatasetSpec("brightness_digits", (28, 28, 1), 10))


def test_a_registered_dataset_without_its_data_fails_with_one_line(registered, tmp_path, monkeypatch):
    """A dataset TFDS does not know, with no local files: one DataUnavailableError line naming it, what was tried
    and the generic fix (TFDS's own error listed every dataset it knows, a screenful; then a KeyError)."""
    from tfadv import data as data_lib

    monkeypatch.setenv("TFADV_OFFLINE", "1")  # no network probe
    monkeypatch.setenv("HOME", str(tmp_path))  # no keras.datasets cache
    catalog.register_dataset(catalog.DatasetSpec("brightness_digits_elsewhere", (28, 28, 1), 10,
                                                 local_idx_dirs=(str(tmp_path / "idx"),)))
    registered(catalog.DATASETS, "brightness_digits_elsewhere")
    for source in ("auto", "tfds"):
        with pytest.raises(DataUnavailableError) as err:
            data_lib.load("brightness_digits_elsewhere", "test", source=source, tfds_data_dir=str(tmp_path / "tfds"))
        message = str(err.value)
        assert "\n" not in message and len(message) < 600, message
        assert message.startswith("Cannot load dataset 'brightness_digits_elsewhere' (split 'test')"), message
        assert "TFDS has no dataset named 'brightness_digits_elsewhere'" in message, message
        assert "--idx_dir" in message and "--tfds_data_dir" in message, message
        assert (f"IDX files in {tmp_path / 'idx'} (not found)" in message) == (source == "auto"), message
    with pytest.raises(DataUnavailableError, match=r"keras.datasets \(no loader of 'brightness_digits_elsewhere'\)"):
        data_lib.load("brightness_digits_elsewhere", "test", source="keras")


def test_a_registered_loss_that_needs_clean_logits_gets_them_in_every_attack(registered):
    """universal_sgd used to pass clean logits only to a loss named least_likely."""
    seen = []

    @losses.register_loss("away_from_clean", target="none", needs_clean_logits=True)
    def _away(logits, labels, *, clean_logits, **_):
        seen.append(clean_logits is not None)
        return -tf.reduce_sum(tf.square(logits - clean_logits), -1)

    registered(losses.LOSSES, "away_from_clean")
    classifier = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    x = tf.random.stateless_uniform((8, 4, 4, 1), seed=[1, 2])
    ds = tf.data.Dataset.from_tensor_slices((x, tf.zeros(8, tf.int32))).batch(4)
    universal_attacks.universal_sgd(classifier, ds, eps=0.5, norm="l2", epochs=1, loss="away_from_clean")
    attacks.pgd(classifier, x, tf.zeros(8, tf.int32), eps=0.1, steps=2, loss="away_from_clean")
    assert seen and all(seen)
