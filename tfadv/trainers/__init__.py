"""Trainers: ``keras.Model`` subclasses whose ``train_step`` implements tfadv's attack losses."""

from tfadv.trainers.classifier import ClassifierTrainer
from tfadv.trainers.perturbation import GANPerturbationTrainer, PerturbationTrainer
from tfadv.trainers.style import StyleTransferTrainer

__all__ = ["ClassifierTrainer", "GANPerturbationTrainer", "PerturbationTrainer", "StyleTransferTrainer"]
