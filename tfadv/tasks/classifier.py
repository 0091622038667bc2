"""Training a target classifier (``ClassifierExperiment``)."""

import os

import numpy as np
import tensorflow as tf

from tfadv import figures
from tfadv.evaluation import evaluate_classifier
from tfadv.errors import ConfigError
from tfadv.models import CLASSIFIERS, build_classifier, flip_average
from tfadv.tasks.base import RunData, Task
from tfadv.trainers import ClassifierTrainer


def served_classifier(trainer, cfg):
    """What the run serves: the trained network, wrapped in the flip average when ``test_time_flip``."""
    return flip_average(trainer.classifier) if cfg.test_time_flip else trainer.classifier


def _classifier(cfg, spec):
    """The config's network for the data's images and classes (``model_kwargs`` may also name them)."""
    kwargs = {"input_shape": list(spec.image_shape), "num_classes": spec.num_classes, **cfg.model_kwargs}
    return build_classifier(cfg.model, **kwargs)


def check_classifier_name(model: str, own_files: bool = False) -> None:
    """A registered classifier (or, where ``own_files``, a ``.keras`` file of your own that exists)."""
    if own_files and model.endswith(".keras"):  # your own classifier (tfadv-defend); its shapes are checked on load
        if not os.path.isfile(model):
            raise ConfigError(f"model {model!r}: no such classifier file.")
    elif model not in CLASSIFIERS:
        raise ConfigError(f"Unknown model {model!r}. Known classifiers: {', '.join(sorted(CLASSIFIERS))}"
                          + (", or a .keras file of your own." if own_files else "."))


class ClassifierTask(Task):
    kind = "classifier"

    def check(self, cfg):
        check_classifier_name(cfg.model)
        return cfg

    def build(self, cfg, data: RunData):
        spec = data.spec
        trainer = ClassifierTrainer(_classifier(cfg, spec), label_smoothing=cfg.label_smoothing)
        trainer(tf.zeros((1,) + tuple(spec.image_shape)))  # build: a custom train_step never calls the model
        return trainer

    def panels(self, cfg, data: RunData):
        """Held-out images with their true and predicted classes, and the misclassified ones among 256."""
        images, labels = next(iter(data.panels.unbatch().batch(256)))
        names = data.spec.class_names

        shown = min(16, len(images))

        def grids(trainer):
            pred = np.argmax(trainer(images, training=False), -1)
            captions = [[f"true: {figures.class_name(names, int(labels[i]))}",
                         f"pred: {figures.class_name(names, int(pred[i]))}"] for i in range(shown)]
            colors = [[figures.BLACK, figures.BLACK if pred[i] == labels[i] else figures.RED] for i in range(shown)]
            out = {"predictions": figures.labelled_grid(images[:shown].numpy(), captions, cols=8, colors=colors,
                                                        title="held-out images: true class, prediction (red: wrong)")}
            wrong = figures.misclassified_figure(images.numpy(), labels.numpy(), pred, names,
                                                 title="misclassified among 256 held-out images")
            if wrong is not None:
                out["misclassified"] = wrong
            return out

        return grids

    def keras_artifact(self, cfg, spec, companion=None):
        classifier = _classifier(cfg, spec)
        return flip_average(classifier) if cfg.test_time_flip else classifier

    def save(self, trainer, cfg, workdir):
        served_classifier(trainer, cfg).save(os.path.join(workdir, self.artifact))

    def measure(self, trainer, cfg, data, history):
        model = served_classifier(trainer, cfg)
        return {"accuracy": evaluate_classifier(model, data.test)["accuracy"], "params": model.count_params()}
