"""Networks: target classifiers (and, in later modules, generators).

All take float32 NHWC images in [0, 1]; classifiers return logits.
"""

from tfadv.models.classifiers import CLASSIFIERS, build_classifier, imagenet_classifier, resnet_cifar, small_cnn
from tfadv.models.layers import ImagePreprocess

__all__ = ["CLASSIFIERS", "ImagePreprocess", "build_classifier", "imagenet_classifier", "resnet_cifar",
           "small_cnn"]
