"""Recipes of arbitrary style transfer networks."""

from tfadv.recipes.registry import recipe
from tfadv.schema import OptimizerConfig, StyleExperiment


@recipe
def style_gram_stack() -> StyleExperiment:
    """The seed's arbitrary style transfer at 256 px (needs ImageNet VGG16 weights and a GPU to be useful)."""
    return StyleExperiment(method="gram", size=256, batch_size=4,
                           network_kwargs={"repeats": 32, "filters": [256, 128, 64]},
                           optimizer=OptimizerConfig(name="adam", learning_rate=1e-3, schedule="constant"),
                           content_weight=1.0, style_weight=10.0, tv_weight=1e-4, epochs=10)


@recipe
def style_adain() -> StyleExperiment:
    """AdaIN baseline at 256 px (Huang & Belongie: lr 1e-4, style weight 10)."""
    cfg = style_gram_stack()
    cfg.method, cfg.network_kwargs = "adain", {}
    cfg.optimizer.learning_rate = 1e-4
    return cfg
