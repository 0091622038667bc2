"""Trainers: ``keras.Model`` subclasses whose ``train_step`` implements tfadv's attack losses."""

from tfadv.trainers.perturbation import GANPerturbationTrainer, PerturbationTrainer, discriminator

__all__ = ["GANPerturbationTrainer", "PerturbationTrainer", "discriminator"]
