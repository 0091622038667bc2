"""Training a style-transfer network on (content, style) pairs from two image folders (``StyleExperiment``)."""

import json
import os

import numpy as np
import tensorflow as tf

from tfadv.data.images import image_pairs
from tfadv.errors import ZooError
from tfadv.models.random_encoder import pink_noise_images
from tfadv.models.style import adain_network, gram_stack_network
from tfadv.tasks.base import RunData, Task, shard_by_data, steps_in
from tfadv.trainers.style import StyleTransferTrainer

# Below this pixel standard deviation (on [0, 1] images) an output is a flat image: what an untrained or collapsed
# style network gives (measured: an untrained AdaIN network's outputs on the probes have a std of 0.017 at 32 px and
# 0.027 at 64 px, a grey square; a trained one follows its content image, whose pink-noise probes have a std of 0.24).
UNTRAINED_STD = 0.05


def build_style_network(cfg):
    """The style network of a style config."""
    build = gram_stack_network if cfg.method == "gram" else adain_network
    return build(size=cfg.size, vgg_weights=cfg.vgg_weights, encoder=cfg.encoder, encoder_kwargs=cfg.encoder_kwargs,
                 **cfg.network_kwargs)


class StyleTask(Task):
    """No labels and no test split: the run records its training losses."""

    kind = "style"
    labelled = False

    def data(self, cfg) -> RunData:
        # steps_per_epoch set: an epoch is that many batches of cycled content images (a small photo folder
        # gives few batches per pass); unset: one pass over the content images.
        pairs = image_pairs(cfg.content_dir, cfg.style_dir, cfg.size, cfg.batch_size, cfg.seed,
                            cycle=bool(cfg.steps_per_epoch))
        steps = steps_in(pairs, cfg.steps_per_epoch)
        return RunData(shard_by_data(pairs.take(steps)), steps)

    def build(self, cfg, data: RunData):
        trainer = StyleTransferTrainer(build_style_network(cfg), cfg.method, cfg.content_weight, cfg.style_weight,
                                       cfg.tv_weight, vgg_weights=cfg.vgg_weights, encoder=cfg.encoder,
                                       encoder_kwargs=cfg.encoder_kwargs, identity_weight=cfg.identity_weight)
        content, style = next(iter(data.train))
        trainer({"content": content[:1], "style": style[:1]})  # build before fit / save
        return trainer

    def panels(self, cfg, data: RunData):
        """content | style | output of a fixed batch."""
        content, style = next(iter(data.panels.unbatch().batch(8)))

        def grids(trainer):
            return {"content": content.numpy(), "style": style.numpy(),
                    "output": trainer({"content": content, "style": style}).numpy()}

        return grids

    def save(self, trainer, cfg, workdir):
        trainer.network.save(os.path.join(workdir, self.artifact))

    def measure(self, trainer, cfg, data, history):
        return {**{k: float(v[-1]) for k, v in history.history.items()},
                "first_epoch_loss": float(history.history["loss"][0]),
                "params": trainer.network.count_params(), "encoder": cfg.encoder,
                "vgg_weights": cfg.vgg_weights if cfg.encoder == "vgg16" else None}

    def zoo_kind(self, cfg):
        return "style"

    def entry_fields(self, cfg):
        return {"dataset": f"folders:{cfg.content_dir}|{cfg.style_dir}", "input_shape": [cfg.size, cfg.size, 3],
                "output": "stylised image", "endpoints": {"serve": "(content, style) -> image"}}

    def keras_artifact(self, cfg, spec, companion=None):
        return build_style_network(cfg)

    def exported_figures(self, serve, cfg, workdir):
        """Style networks have no accuracy: the run's final losses, and the output range and spread on probe
        pairs. A network whose outputs are near-constant is untrained: refused, so it never reaches the zoo."""
        content, style = (tf.constant(pink_noise_images(2, cfg.size, seed)) for seed in (1, 2))
        output = serve(content, style)
        spread = float(np.min(np.std(np.asarray(output), axis=(1, 2, 3))))
        if not spread >= UNTRAINED_STD:
            raise ZooError(f"The style network's outputs are near-constant (pixel std {spread:.4f} < {UNTRAINED_STD} "
                           "on probe pairs): it is untrained, so it is not exported. Train it longer (with a trained "
                           "or random_vgg19 encoder).")
        with open(os.path.join(workdir, "metrics.json")) as f:
            metrics = json.load(f)
        return {**metrics, "output_range": [float(tf.reduce_min(output)), float(tf.reduce_max(output))],
                "output_std": round(spread, 6)}
