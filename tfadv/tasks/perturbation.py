"""Training a perturbation generator against a frozen target (``PerturbationExperiment``): per-image or universal."""

import dataclasses
import os

import keras
import tensorflow as tf

from tfadv import figures
from tfadv.models import discriminator
from tfadv.errors import ConfigError
from tfadv.models.generators import ATTACK_MODES, GENERATORS, build_generator, perturbation_model
from tfadv.models.universal import UniversalPerturbation
from tfadv.losses import FEATURE_SEPARATION, check_loss, loss_settings
from tfadv.targets import ensemble_members, load_target
from tfadv.tasks.base import RunData, Task, attack_panels
from tfadv.tasks.keras_form import surrogate_taps
from tfadv.trainers import GANPerturbationTrainer, PerturbationTrainer
from tfadv.trainers.transfer import TransferPerturbationTrainer


def build_attacker(cfg, image_shape) -> keras.Model:
    """The (unbuilt) x -> x_hat model of a perturbation config: its generator behind the budget (or the universal
    perturbation)."""
    generator = build_generator(cfg.generator, input_shape=tuple(image_shape),
                                output_activation="sigmoid" if cfg.mode == "joint" else "tanh",
                                **cfg.generator_kwargs)
    if cfg.mode == "universal":
        return UniversalPerturbation(generator, cfg.norm, cfg.eps, noise_seed=cfg.seed,
                                     name=f"{cfg.generator}_universal")
    return perturbation_model(generator, cfg.mode, cfg.norm, cfg.eps, name=f"{cfg.generator}_{cfg.mode}")


def build_perturbation_trainer(cfg, classifier, image_shape, taps=None):
    """The (uncompiled, built) trainer of a perturbation config around the frozen ``classifier`` (and, for LTP's
    feature separation, the surrogates' mid-layer ``taps``)."""
    attacker = build_attacker(cfg, image_shape)
    common = dict(loss=cfg.loss, target_class=cfg.target_class, magnitude_weight=cfg.magnitude_weight,
                  magnitude_norm=cfg.magnitude_norm, loss_settings=cfg.loss_settings)
    if cfg.input_diversity or cfg.loss == FEATURE_SEPARATION:
        trainer = TransferPerturbationTrainer(attacker, classifier, taps=taps, input_diversity=cfg.input_diversity,
                                              diversity_seed=cfg.seed, **common)
    elif cfg.gan:
        trainer = GANPerturbationTrainer(attacker, classifier, discriminator(tuple(image_shape)),
                                         realism_weight=cfg.realism_weight, **common)
    else:
        trainer = PerturbationTrainer(attacker, classifier, **common)
    trainer(tf.zeros((1,) + tuple(image_shape)))  # build: a custom train_step never calls the model
    return trainer


class PerturbationTask(Task):
    """The run folder holds ``attacker.keras``, the x -> x_hat model that export turns into the zoo's SavedModel."""

    kind = "perturbation"
    artifact = "attacker.keras"

    def check(self, cfg):
        """The generator, the mode, the loss (its target class and its settings, recorded complete: defaults
        filled in) and LTP's feature layers."""
        GENERATORS.lookup(cfg.generator)
        if cfg.mode not in ATTACK_MODES:
            raise ConfigError(f"mode must be one of {ATTACK_MODES}. Received: {cfg.mode!r}")
        if cfg.loss == FEATURE_SEPARATION:
            members = len(ensemble_members(cfg.target))
            if len(cfg.feature_layers) != members or cfg.target_class is not None:
                raise ConfigError(f"loss='feature_separation' is untargeted and needs one feature_layers name per "
                                  f"member of target {cfg.target!r} ({members}). Received: "
                                  f"feature_layers={cfg.feature_layers!r}, target_class={cfg.target_class!r}")
            if cfg.loss_settings:
                raise ConfigError(f"loss='feature_separation' has no settings. Received: "
                                  f"loss_settings={cfg.loss_settings!r}")
            return cfg
        check_loss(cfg.loss, cfg.target_class, cfg.data.spec().num_classes)
        if cfg.feature_layers:
            raise ConfigError(f"feature_layers are read by loss='feature_separation' only, not {cfg.loss!r}.")
        return dataclasses.replace(cfg, loss_settings=loss_settings(cfg.loss, cfg.loss_settings))

    def build(self, cfg, data: RunData):
        if cfg.loss == FEATURE_SEPARATION:  # mid-layer features: the targets' Keras forms (same outputs)
            classifier, taps = surrogate_taps(cfg.target, cfg.feature_layers)
            return build_perturbation_trainer(cfg, classifier, data.spec.image_shape, taps)
        return build_perturbation_trainer(cfg, load_target(cfg.target), data.spec.image_shape)

    def compile(self, trainer, cfg, optimizer):
        if cfg.gan:
            trainer.compile(optimizer=optimizer, d_optimizer=keras.optimizers.Adam(cfg.d_learning_rate,
                                                                                   beta_1=cfg.d_beta_1),
                            jit_compile=cfg.runtime.jit_compile)
        else:
            super().compile(trainer, cfg, optimizer)

    def panels(self, cfg, data: RunData):
        attack = attack_panels(data.panels, data.spec.class_names, lambda t, x, y: t(x, training=False),
                               lambda t: t.classifier, cfg.target_class)
        if cfg.mode != "universal":
            return attack
        return lambda trainer: {**attack(trainer),
                                "perturbation": figures.perturbation_figure(trainer.attacker.perturbation())}

    def keras_artifact(self, cfg, spec, companion=None):
        attacker = build_attacker(cfg, spec.image_shape)
        attacker(tf.zeros((1,) + tuple(spec.image_shape)))
        return attacker

    def save(self, trainer, cfg, workdir):
        trainer.attacker.save(os.path.join(workdir, self.artifact))

    def measure(self, trainer, cfg, data, history):
        measured = trainer.evaluate(data.test, verbose=0, return_dict=True)
        return {**{k: float(v) for k, v in measured.items()}, "generator_params": trainer.attacker.count_params()}

    def zoo_kind(self, cfg):
        return "universal" if cfg.mode == "universal" else "perturbation"

    def entry_fields(self, cfg):
        fields = {"target": cfg.target, "output": "x_hat",
                  "budget": {"norm": cfg.norm, "eps": cfg.eps} if cfg.mode != "joint" else None}
        if cfg.mode == "universal":
            fields["endpoints"] = {"serve": "x -> x_hat", "perturbation": "() -> U [1, H, W, C]"}
        return fields

    def attack_target(self, cfg):
        return cfg.target
