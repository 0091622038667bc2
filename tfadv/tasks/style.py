"""Training a style-transfer network on (content, style) pairs from two image folders (``StyleExperiment``)."""

import json
import os

import tensorflow as tf

from tfadv.data.images import image_pairs
from tfadv.models.style import adain_network, gram_stack_network
from tfadv.tasks.base import RunData, Task, shard_by_data, steps_in
from tfadv.trainers.style import StyleTransferTrainer


def build_style_network(cfg):
    """The style network of a style config."""
    if cfg.method == "gram":
        return gram_stack_network(size=cfg.size, vgg_weights=cfg.vgg_weights, **cfg.network_kwargs)
    return adain_network(size=cfg.size, vgg_weights=cfg.vgg_weights, **cfg.network_kwargs)


class StyleTask(Task):
    """No labels and no test split: the run records its training losses."""

    kind = "style"
    labelled = False

    def data(self, cfg) -> RunData:
        pairs = image_pairs(cfg.content_dir, cfg.style_dir, cfg.size, cfg.batch_size, cfg.seed)
        steps = steps_in(pairs, cfg.steps_per_epoch)
        return RunData(shard_by_data(pairs.take(steps)), steps)

    def build(self, cfg, data: RunData):
        trainer = StyleTransferTrainer(build_style_network(cfg), cfg.method, cfg.content_weight, cfg.style_weight,
                                       cfg.tv_weight, vgg_weights=cfg.vgg_weights)
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
                "params": trainer.network.count_params(), "vgg_weights": cfg.vgg_weights}

    def zoo_kind(self, cfg):
        return "style"

    def entry_fields(self, cfg):
        return {"dataset": f"folders:{cfg.content_dir}|{cfg.style_dir}", "input_shape": [cfg.size, cfg.size, 3],
                "output": "stylised image", "endpoints": {"serve": "(content, style) -> image"}}

    def exported_figures(self, serve, cfg, workdir):
        """Style networks have no accuracy: the run's final losses, and the output range on a probe pair."""
        probe = tf.random.stateless_uniform((1, cfg.size, cfg.size, 3), (0, 0))
        output = serve(probe, probe)
        with open(os.path.join(workdir, "metrics.json")) as f:
            metrics = json.load(f)
        return {**metrics, "output_range": [float(tf.reduce_min(output)), float(tf.reduce_max(output))]}
