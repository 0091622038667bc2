"""Training a defended classifier from scratch (``DefenseExperiment``): joint (with a generator) or PGD."""

import os

import keras
import tensorflow as tf

from tfadv.models import build_classifier
from tfadv.models.generators import build_generator, perturbation_model
from tfadv.tasks.base import RunData, Task, attack_panels
from tfadv.trainers.defense import JointAdversarialTrainer, PGDAdversarialTrainer


def build_defense_trainer(cfg, image_shape, num_classes):
    """The (uncompiled, built) defence trainer of a defence config, around a fresh classifier."""
    classifier = build_classifier(cfg.model, **{"input_shape": list(image_shape), "num_classes": num_classes,
                                                **cfg.model_kwargs})
    if cfg.method == "pgd":
        trainer = PGDAdversarialTrainer(classifier, cfg.norm, cfg.eps, steps=cfg.pgd_steps,
                                        adversarial_fraction=cfg.adversarial_fraction)
    else:
        generator = build_generator(cfg.generator, input_shape=tuple(image_shape), output_activation="tanh",
                                    **cfg.generator_kwargs)
        trainer = JointAdversarialTrainer(classifier, perturbation_model(generator, "thresholded", cfg.norm, cfg.eps),
                                          adversarial_fraction=cfg.adversarial_fraction,
                                          generator_steps=cfg.generator_steps, refine_steps=cfg.refine_steps,
                                          norm=cfg.norm, eps=cfg.eps, attack_loss=cfg.generator_loss,
                                          attack_kappa=cfg.generator_kappa)
    trainer(tf.zeros((1,) + tuple(image_shape)))
    return trainer


class DefenseTask(Task):
    """The run folder holds ``model.keras`` (the defended classifier, what export publishes) and, for the joint
    method, ``attacker.keras`` (its co-trained generator)."""

    kind = "defense"

    def build(self, cfg, data: RunData):
        return build_defense_trainer(cfg, data.spec.image_shape, data.spec.num_classes)

    def compile(self, trainer, cfg, optimizer):
        if cfg.method == "joint":
            trainer.compile(optimizer=optimizer, g_optimizer=keras.optimizers.Adam(cfg.g_learning_rate),
                            jit_compile=cfg.jit_compile)
        else:
            super().compile(trainer, cfg, optimizer)

    def panels(self, cfg, data: RunData):
        """What the classifier trains on: the training attack's x_hat, and the classifier's answers."""
        return attack_panels(data.panels, data.spec.class_names, lambda t, x, y: t.adversarial(x, y),
                             lambda t: t.classifier)

    def save(self, trainer, cfg, workdir):
        trainer.classifier.save(os.path.join(workdir, self.artifact))
        if cfg.method == "joint":
            trainer.attacker.save(os.path.join(workdir, "attacker.keras"))

    def measure(self, trainer, cfg, data, history):
        measured = trainer.evaluate(data.test, verbose=0, return_dict=True)
        return {**{k: float(v) for k, v in measured.items()}, "accuracy": float(measured["clean_accuracy"])}
