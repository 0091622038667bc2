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


def _offline(cfg: StyleExperiment) -> StyleExperiment:
    """A recipe trained here, without downloads: the random encoder, Debian's photographs (``make style-data``),
    128-px images and a slim decoder, sized to a 2-core CPU."""
    cfg.encoder, cfg.encoder_kwargs, cfg.vgg_weights = "random_vgg19", {"seed": 0, "width": 0.25}, None
    cfg.content_dir, cfg.style_dir = "data/photos/content", "data/photos/style"
    cfg.size, cfg.batch_size, cfg.steps_per_epoch, cfg.epochs = 128, 4, 100, 30
    cfg.tv_weight = 1.0  # a random encoder's gradients are rich in high frequencies: smooth them
    # A pixel target for the decoders: with only the perceptual losses of the random encoder, AdaIN's decoder
    # kept a flat grey output for 1,000 steps (measured before the encoder's activation cap); with the cap and
    # this term its identity loss fell from 0.20 to 0.09 in 800 steps, and the outputs took the styles' colours.
    cfg.identity_weight = 10.0
    return cfg


@recipe
def style_gram_stack_offline() -> StyleExperiment:
    """The seed's Gram-stack network trained offline: random VGG-19-shaped loss network, wallpaper photographs."""
    cfg = _offline(style_gram_stack())
    cfg.network_kwargs = {"repeats": 8, "filters": [64, 32, 16]}
    cfg.style_weight = 0.2  # at the start: Gram loss 14, content 1.3, identity 0.28 (x 10)
    return cfg


@recipe
def style_adain_offline() -> StyleExperiment:
    """AdaIN trained offline: random VGG-19-shaped encoder and loss network, wallpaper photographs."""
    cfg = _offline(style_adain())
    # At the start: style loss 3.6, content 1.7, identity 0.20 (x 10); 4,000 steps only, hence the larger rate.
    cfg.style_weight, cfg.optimizer.learning_rate, cfg.epochs = 1.0, 5e-4, 40
    return cfg
