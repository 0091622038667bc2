"""Training a defended classifier from scratch (``DefenseExperiment``): any registered defense method."""

import dataclasses
import os

import tensorflow as tf

from tfadv.models import build_classifier
from tfadv.tasks.base import Companion, RunData, Task, attack_panels
from tfadv.tasks.classifier import check_classifier_name
from tfadv.trainers.defense import RobustAccuracyGuard, co_trains_a_generator, defense_method


def build_defense_trainer(cfg, image_shape, num_classes):
    """The (uncompiled, built) trainer of defense ``cfg.method`` (``tfadv.trainers.defense.DEFENSES``) with its
    ``settings``, around a fresh classifier."""
    method = defense_method(cfg.method)
    classifier = build_classifier(cfg.model, **{"input_shape": list(image_shape), "num_classes": num_classes,
                                                **cfg.model_kwargs})
    trainer = method.build(cfg, method.settings_of(cfg), classifier, tuple(image_shape))
    trainer(tf.zeros((1,) + tuple(image_shape)))
    return trainer


class DefenseTask(Task):
    """The run folder holds ``model.keras`` (the defended classifier, what export publishes) and, for methods
    registered with a co-trained generator (co_trained), ``attacker.keras``."""

    kind = "defense"

    def check(self, cfg):
        """The method and its settings (recorded complete, defaults filled in) and the classifier."""
        settings = defense_method(cfg.method).settings_of(cfg)
        check_classifier_name(cfg.model, own_files=True)
        return dataclasses.replace(cfg, settings=dataclasses.asdict(settings))

    def build(self, cfg, data: RunData):
        return build_defense_trainer(cfg, data.spec.image_shape, data.spec.num_classes)

    def compile(self, trainer, cfg, optimizer):
        """The classifier's ``optimizer``, and the method's own optimizers (the co_trained defense's generator's)."""
        trainer.compile(optimizer=optimizer, jit_compile=cfg.runtime.jit_compile,
                        **defense_method(cfg.method).settings_of(cfg).optimizers())

    def callbacks(self, cfg, data: RunData):
        """``guard_max_drop``: early stopping on held-out PGD-10 accuracy (512 validation images)."""
        if cfg.guard_max_drop is None:
            return []
        images, labels = next(iter(data.panels.unbatch().batch(512)))
        return [RobustAccuracyGuard(images, labels, cfg.norm, cfg.eps, max_drop=cfg.guard_max_drop)]

    def panels(self, cfg, data: RunData):
        """What the classifier trains on: the training attack's x_hat, and the classifier's answers."""
        return attack_panels(data.panels, data.spec.class_names, lambda t, x, y: t.adversarial(x, y),
                             lambda t: t.classifier)

    def keras_artifact(self, cfg, spec, companion=None):
        trainer = build_defense_trainer(cfg, spec.image_shape, spec.num_classes)
        return trainer.attacker if companion else trainer.classifier

    def save(self, trainer, cfg, workdir):
        trainer.classifier.save(os.path.join(workdir, self.artifact))
        if co_trains_a_generator(cfg.method):
            trainer.attacker.save(os.path.join(workdir, "attacker.keras"))

    def measure(self, trainer, cfg, data, history):
        measured = trainer.evaluate(data.test, verbose=0, return_dict=True)
        return {**{k: float(v) for k, v in measured.items()}, "accuracy": float(measured["clean_accuracy"])}

    def zoo_kind(self, cfg):
        return "defended_classifier"

    def companions(self, cfg):
        """The co-trained generator of a method registered with one (co_trained), as ``<entry>_generator`` (the defense
        report's co-trained row comes from the zoo like every other attack)."""
        if not co_trains_a_generator(cfg.method):
            return []
        return [Companion("_generator", "attacker.keras", "perturbation",
                          {"output": "x_hat", "co_trained": True, "budget": {"norm": cfg.norm, "eps": cfg.eps}})]
