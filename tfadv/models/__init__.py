"""Networks: target classifiers, perturbation generators, the GAN variant's discriminator, style networks.

All take float32 NHWC images in [0, 1]; classifiers return logits.
"""

from tfadv.models.classifiers import (CLASSIFIERS, build_classifier, flip_average, imagenet_classifier, resnet_cifar,
                                      small_cnn)
from tfadv.models.discriminators import discriminator
from tfadv.models.generators import (GENERATORS, autoencoder, build_generator, perturbation_model,
                                     resnet_generator, unet)
from tfadv.models.layers import ImagePreprocess
from tfadv.models.style import AdaIN, GramStack, adain_network, gram_stack_network, vgg_features
from tfadv.models.universal import UniversalPerturbation

__all__ = ["CLASSIFIERS", "GENERATORS", "ImagePreprocess", "autoencoder", "build_classifier", "build_generator",
           "discriminator", "flip_average",
           "imagenet_classifier", "perturbation_model", "resnet_cifar", "resnet_generator", "small_cnn", "unet",
           "UniversalPerturbation", "AdaIN", "GramStack", "adain_network", "gram_stack_network", "vgg_features"]
