"""Where training runs: tf.distribute strategies, mixed precision, and the gradient step every trainer shares.

``make_strategy(name)`` turns the ``strategy`` config field (``--strategy``)
into a ``tf.distribute.Strategy``:

* ``default``: one device (the first GPU if any, else the CPU);
* ``mirrored``: every local GPU (or every logical CPU device) of one machine;
* ``multi_worker``: several machines, described by the ``TF_CONFIG``
  environment variable (``{"cluster": {"worker": [...]}, "task": {...}}``);
* ``tpu``: a Cloud TPU found by ``TPUClusterResolver`` (``TPU_NAME``).

``data.batch_size`` is the *global* batch: Keras splits each batch across the
replicas. Custom ``train_step``\\ s compute a per-replica mean loss and apply it
with :func:`minimize`, which scales it by ``1 / num_replicas`` (the optimizer
sums gradients over replicas) and by the optimizer's loss scale (mixed
precision), so one device and N replicas take the same step.
"""

import json
import logging
import os

import keras
import tensorflow as tf

from tfadv.config import STRATEGIES
from tfadv.errors import ConfigError

log = logging.getLogger("tfadv.distribute")



def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """The ``tf.distribute.Strategy`` called ``name`` (one of STRATEGIES); see the module doc."""
    if name not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES}. Received: {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    elif name == "multi_worker":
        cluster = _tf_config()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        log.info("multi_worker: task %s of cluster %s", cluster.get("task"), cluster.get("cluster"))
    else:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as e:
            raise ConfigError(f"strategy=tpu: no TPU found ({e}). Set TPU_NAME or run on a TPU VM.") from e
        strategy = tf.distribute.TPUStrategy(resolver)
    log.info("strategy %s: %d replicas in sync", name, strategy.num_replicas_in_sync)
    return strategy


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError("strategy=multi_worker needs the TF_CONFIG environment variable, e.g. "
                          '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                          '"index": 0}} (see BUILD.md).')
    try:
        cluster = json.loads(raw)
        task = cluster["task"]
        members = cluster["cluster"][task["type"]]  # "worker" (and optionally one "chief")
        if not 0 <= int(task["index"]) < len(members):
            raise ValueError(f"task index {task['index']} outside the {len(members)} {task['type']} task(s)")
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"TF_CONFIG is not a valid cluster description ({e}): {raw!r}") from e
    return cluster


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes the run's outputs (worker 0 of a multi-worker cluster; always true otherwise)."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and
                                             "chief" not in resolver.cluster_spec().as_dict())


def set_precision(mixed: bool) -> None:
    """Global Keras dtype policy: ``mixed_float16`` (float16 compute, float32 weights) or ``float32``.

    Trainers keep their losses, budgets and outputs in float32; ``compile``
    wraps the optimizer in a ``LossScaleOptimizer`` and :func:`minimize` scales
    the loss. Mixed precision pays off on GPUs with tensor cores; on a CPU it is slower.
    """
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")


def loss_scale_wrapped(optimizer):
    """``optimizer`` wrapped in a ``LossScaleOptimizer`` when the global policy is mixed_float16."""
    optimizer = keras.optimizers.get(optimizer)
    if (keras.mixed_precision.global_policy().name == "mixed_float16"
            and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def minimize(optimizer, tape: tf.GradientTape, loss, variables) -> None:
    """One optimizer step on ``loss`` (a per-replica mean, recorded by ``tape``) for ``variables``.

    The gradient is scaled by ``1 / num_replicas_in_sync`` (the optimizer sums
    replicas' gradients, so N replicas step like one device on the global
    batch) and by the optimizer's loss scale, which ``apply`` undoes.
    """
    if loss.dtype != tf.float32:  # a cast here, outside the tape, would cut the gradient path
        raise TypeError(f"minimize needs a float32 loss computed inside the tape; got {loss.dtype.name}. "
                        "Cast logits / features to float32 before the loss (mixed precision).")
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    factor = optimizer.scale_loss(tf.constant(1.0 / replicas, tf.float32))
    gradients = tape.gradient(loss, variables, output_gradients=factor)
    optimizer.apply(gradients, variables)


def replica_max(value):
    """The maximum of ``value`` over all replicas (itself outside a multi-replica step)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return tf.reduce_max(context.all_gather(tf.reshape(value, [1]), axis=0))


def synced_results(metrics) -> dict:
    """``{name: result}`` of Keras metrics for a train/test step to return, aggregated over all replicas.

    ``Mean`` metrics all-reduce their total and count; :class:`MaxMetric`
    already holds the global maximum. Every replica returns the same values.
    Under MultiWorkerMirroredStrategy they are returned with shape [1]: Keras
    reduces a step's logs there with ``strategy.reduce("MEAN", v, axis=0)``,
    which fails on scalars (keras-team/keras#20585) and averages these
    identical values correctly.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return {m.name: m.result() for m in metrics}
    results = {}
    for m in metrics:
        if isinstance(m, keras.metrics.Mean):
            total, count = context.all_reduce("SUM", [tf.identity(m.total), tf.identity(m.count)])
            results[m.name] = tf.math.divide_no_nan(total, count)
        else:
            results[m.name] = m.result()
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        results = {name: tf.reshape(value, [1]) for name, value in results.items()}
    return results


def ready_to_fit(model: keras.Model) -> keras.Model:
    """Builds the model's optimizers (both, for two-player trainers) and readies ``fit`` for the strategy.

    Building before ``fit`` lets ``BackupAndRestore`` load a killed run's
    optimizer state into every optimizer (it builds only ``model.optimizer``).
    Under MultiWorkerMirroredStrategy it also works around
    keras-team/keras#20585 (open): Keras' pre-fit symbolic build reduces a
    distributed batch with ``strategy.reduce``, which the collective strategy
    cannot do with a nested batch. The model is built already, so we unset its
    remembered strategy: ``fit`` then skips that build and uses the strategy of
    the enclosing scope (every runner fits inside it). The step's logs must
    come from :func:`synced_results`. Call after ``compile``.
    """
    if hasattr(model, "build_optimizers"):  # two-player trainers (tfadv.trainers.two_player)
        model.build_optimizers()
    elif model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        model._distribute_strategy = None  # noqa: SLF001 - see the docstring
    return model
