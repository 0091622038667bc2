"""Each defense's training cost per step, on the same batch, one after the other (``tools/benchmark_defense.py``).

    costs = benchmark(["fashion_mnist_pgd_defense_linf", "fashion_mnist_fgsm_defense_linf"], batch_size=128,
                      steps=30, epoch_images=54000)   # logs a Markdown table, a row as each is timed
    record(costs, settings)                           # each row as `training_cost` of its zoo entry

What is timed is ``train_step`` of the exact trainer the experiment's config builds (classifier, generator,
refine and PGD steps) as one ``tf.function``, called on one fixed synthetic batch already in memory: timing
``fit`` measured the input pipeline's waiting too, which rounded steps up to powers of two of a millisecond here
(255, 511, 1023 ms). Costs are relative to the first experiment.
"""

import math

from tfadv import markdown
from tfadv.timing import timed_calls

HEADER = ("experiment", "method", "training attack", "ms / step", "images / s", "s / epoch", "cost vs first")


def seconds_per_step(name: str, batch_size: int, steps: int) -> float:
    """Seconds per training step of defense experiment ``name`` (after two warm-up steps: tracing, first calls)."""
    import keras
    import tensorflow as tf

    from tfadv import experiments
    from tfadv.data import get_spec
    from tfadv.errors import ConfigError
    from tfadv.tasks import get_task
    from tfadv.tasks.defense import build_defense_trainer

    cfg = experiments.get_experiment(name)
    if cfg.kind != "defense":
        raise ConfigError(f"{name!r} is a {cfg.kind} experiment, not a defense.")
    spec = get_spec(cfg.data.dataset)
    keras.utils.set_random_seed(0)
    trainer = build_defense_trainer(cfg, spec.image_shape, spec.num_classes)
    get_task("defense").compile(trainer, cfg, keras.optimizers.AdamW(1e-3))  # as a training run compiles it
    images = tf.random.stateless_uniform((batch_size,) + tuple(spec.image_shape), (0, 1))
    labels = tf.random.stateless_uniform((batch_size,), (0, 2), 0, spec.num_classes, tf.int32)
    step = tf.function(trainer.train_step, jit_compile=bool(cfg.runtime.jit_compile))
    seconds, _ = timed_calls(lambda: _read_back(step((images, labels))), [()] * steps, warmup=2)
    return seconds


def _read_back(logs) -> None:
    """Blocks until a step's results exist."""
    for value in logs.values():
        value.numpy()


def benchmark(names, *, batch_size: int, steps: int, epoch_images: int, log=print) -> dict:
    """Times each defense experiment of ``names`` in turn and logs the Markdown table, each row as soon as it is
    measured. Returns ``{name: training cost}``: method, training attack, ms per step, seconds per epoch of
    ``epoch_images`` images and the cost relative to the first experiment (``cost_vs``, ``cost_ratio``)."""
    from tfadv import experiments
    from tfadv.trainers.defense import describe

    costs = {}
    batches = math.ceil(epoch_images / batch_size)

    def rows():
        first = None
        for name in names:
            seconds = seconds_per_step(name, batch_size, steps)
            first = first or seconds
            method, attack = describe(experiments.get_experiment(name))
            costs[name] = {"method": method, "training_attack": attack, "ms_per_step": round(1000 * seconds, 1),
                           "seconds_per_epoch": round(seconds * batches), "cost_vs": names[0],
                           "cost_ratio": round(seconds / first, 3)}
            yield (name, method, attack, f"{1000 * seconds:.0f}", f"{batch_size / seconds:.0f}",
                   f"{seconds * batches:.0f}", f"{seconds / first:.2f}x")

    for line in markdown.table_lines(HEADER, rows()):
        log(line)
    return costs


def record(costs: dict, settings: dict, log=print) -> None:
    """Adds each cost with ``settings`` (how it was measured) as ``training_cost`` to the zoo entry of the
    experiment's name (the artifact is untouched); a name with no entry is said and skipped."""
    from tfadv import zoo

    for name, cost in costs.items():
        if name in zoo.names():
            zoo.add_metrics(name, {"training_cost": {**cost, "settings": settings}})
            log(f"recorded training_cost of {name}")
        else:
            log(f"no zoo entry {name}: its row is not recorded")
