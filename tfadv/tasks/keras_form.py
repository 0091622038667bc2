"""Zoo entries rebuilt as Keras models: what :mod:`tfadv.presets` hands users, and what a transfer generator
taps mid-layer features from (a SavedModel exposes its logits only).

The rebuilt network is the one the entry's recorded config builds (its task's ``keras_artifact``), with the
SavedModel's variables copied in the order the SavedModel stores them (every shape checked); its outputs are then
compared with the SavedModel's ``serve`` on a probe batch. Any mismatch is a ZooError, never a silently different
model.
"""

import keras
import numpy as np
import tensorflow as tf

from tfadv import experiments, zoo
from tfadv.data import get_spec
from tfadv.errors import ConfigError, ZooError
from tfadv.targets import ensemble_members, load_target, split_target

PROBE_ATOL = 1e-4  # graph and eager kernels differ by ~2e-6 on the zoo's classifiers


def keras_entry(name: str, zoo_dir: str | None = None) -> keras.Model:
    """Zoo entry ``name`` as a trainable Keras model whose outputs equal its SavedModel's (checksum verified)."""
    # The package's task registry imports this module's siblings: imported on use.
    from tfadv.tasks import get_task

    found = zoo.entry(name, zoo_dir)
    served = zoo.load(name, zoo_dir)
    cfg = experiments.from_dict(found["config"])
    spec = None if found["kind"] == "style" else get_spec(found["dataset"])  # style: two image folders
    model = get_task(cfg.kind).keras_artifact(cfg, spec, companion="_generator" if found.get("co_trained") else None)
    stored = list(served.saved_model.variables)
    shapes = ([tuple(v.shape) for v in stored], [tuple(v.shape) for v in model.variables])
    if shapes[0] != shapes[1]:
        raise ZooError(f"Zoo entry {name!r}: its SavedModel's {len(stored)} variables do not match the "
                       f"{len(model.variables)} of the network its config builds; it has no Keras form.")
    for source, target in zip(stored, model.variables):
        target.assign(source)
    probe = tf.random.stateless_uniform([4, *found["input_shape"]], seed=[0, 1])
    if found["kind"] == "style":  # (content, style): the probe with itself reversed
        pair = (probe, probe[::-1])
        served_out, keras_out = served.serve(*pair), model({"content": pair[0], "style": pair[1]}, training=False)
    else:
        served_out, keras_out = served.serve(probe), model(probe, training=False)
    gap = float(np.max(np.abs(np.asarray(served_out) - np.asarray(keras_out))))
    if not gap <= PROBE_ATOL:
        raise ZooError(f"Zoo entry {name!r}: the rebuilt Keras model's outputs differ from the SavedModel's by "
                       f"{gap:.3g} on a probe batch; refused.")
    return model


def layer_tap(model: keras.Model, layer: str) -> keras.Model:
    """x -> the output of ``model``'s layer ``layer``, found in the model or in a network nested in it (the zoo's
    flip-averaged classifier holds its CNN as one layer: the tap is then the CNN's, on the unmirrored image)."""
    for candidate in [model] + [inner for inner in model.layers if isinstance(inner, keras.Model)]:
        names = [found.name for found in candidate.layers]
        if layer in names:
            tap = keras.Model(candidate.inputs, candidate.get_layer(layer).output, name=f"{model.name}_{layer}")
            tap.trainable = False
            return tap
    known = [found.name for found in model.layers] + [found.name for inner in model.layers
                                                      if isinstance(inner, keras.Model) for found in inner.layers]
    raise ConfigError(f"Model {model.name!r} has no layer {layer!r}. Its layers: {', '.join(known)}.")


def surrogate_taps(target: str, feature_layers: list[str], zoo_dir: str | None = None):
    """(classifier, taps) for a feature-separation generator: the ``+``-joined ``target`` as Keras models (zoo
    entries rebuilt, ``.keras`` files loaded) averaged into one logits model, and a model x -> [those logits,
    then the feature of each member's layer in ``feature_layers``] sharing its layers (one pass gives both).
    Both are frozen."""
    members = ensemble_members(target)
    if len(members) != len(feature_layers):
        raise ConfigError(f"feature_layers names one layer per member of {target!r}: {len(members)} members, "
                          f"{len(feature_layers)} layers.")
    networks = [load_target(m, zoo_dir) if split_target(m)[0].endswith(".keras") else keras_entry(m, zoo_dir)
                for m in members]
    inputs = keras.Input(networks[0].input_shape[1:], name="images")
    logits = [network(inputs, training=False) for network in networks]
    mean_logits = logits[0] if len(logits) == 1 else keras.layers.Average()(logits)
    classifier = keras.Model(inputs, mean_logits, name="surrogates")
    taps = keras.Model(inputs, [mean_logits] + [layer_tap(n, layer)(inputs) for n, layer in zip(networks,
                                                                                               feature_layers)],
                       name="surrogate_taps")
    for model in (classifier, taps):
        model.trainable = False
    return classifier, taps
