"""Each defense's training cost per step, on the same batch, in rounds (``tools/benchmark_defense.py``).

    costs = benchmark(["fashion_mnist_pgd_defense_linf", "fashion_mnist_fgsm_defense_linf"], batch_size=128,
                      steps=30, epoch_images=54000)   # logs a Markdown table once every round has run
    record(costs, settings)                           # each row as `training_cost` of its zoo entry

What is timed is ``train_step`` of the exact trainer the experiment's config builds (classifier, generator,
refine and PGD steps) as one ``tf.function``, called on one fixed synthetic batch already in memory: timing
``fit`` measured the input pipeline's waiting too, which rounded steps up to powers of two of a millisecond here
(255, 511, 1023 ms). Costs are relative to the first experiment.

Every experiment is built and warmed up first; then ``rounds`` rounds each time every experiment for its share of
``steps``, one after the other. A row's cost is the median over rounds of its time over the first experiment's in
the same round: this machine's speed drifts within minutes (PGD-7's three rounds of one run: 613, 532, 565 ms a
step), and timing each experiment once, in turn, put that drift into the ratios (one such run timed PGD-7 first at 484 ms, 4% over a run four hours before, and the
later rows 7-41% over theirs).
"""

import math

from tfadv import markdown
from tfadv.timing import timed_calls

HEADER = ("experiment", "method", "training attack", "ms / step", "images / s", "s / epoch", "cost vs first")


def training_step(name: str, batch_size: int):
    """A call that runs one training step of defense experiment ``name`` and waits for its results, after two
    warm-up steps (tracing, first calls)."""
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

    def call():
        _read_back(step((images, labels)))

    for _ in range(2):
        call()
    return call


def _read_back(logs) -> None:
    """Blocks until a step's results exist."""
    for value in logs.values():
        value.numpy()


def benchmark(names, *, batch_size: int, steps: int, epoch_images: int, rounds: int = 3, log=print) -> dict:
    """Times each defense experiment of ``names`` for ``steps`` steps in all, split over ``rounds`` rounds (at most
    ``steps``), and logs the Markdown table. Returns ``{name: training cost}``: method, training attack, ms per step
    (median over rounds), seconds per epoch of ``epoch_images`` images and the cost relative to the first experiment
    (``cost_vs``; ``cost_ratio``, the median over rounds of the two experiments' times in the same round)."""
    import numpy as np

    from tfadv import experiments
    from tfadv.trainers.defense import describe

    rounds = max(1, min(rounds, steps))
    calls = {name: training_step(name, batch_size) for name in names}
    seconds = {name: [] for name in names}
    for number in range(rounds):
        share = steps // rounds + (number < steps % rounds)
        for name in names:
            seconds[name].append(timed_calls(calls[name], [()] * share, warmup=0)[0])
        log(f"round {number + 1}/{rounds}: " + ", ".join(f"{1000 * seconds[n][-1]:.0f}" for n in names) + " ms")
    batches = math.ceil(epoch_images / batch_size)
    costs, rows = {}, []
    for name in names:
        step = float(np.median(seconds[name]))
        ratio = float(np.median(np.array(seconds[name]) / np.array(seconds[names[0]])))
        method, attack = describe(experiments.get_experiment(name))
        costs[name] = {"method": method, "training_attack": attack, "ms_per_step": round(1000 * step, 1),
                       "seconds_per_epoch": round(step * batches), "cost_vs": names[0], "cost_ratio": round(ratio, 3),
                       "rounds": rounds}
        rows.append((name, method, attack, f"{1000 * step:.0f}", f"{batch_size / step:.0f}", f"{step * batches:.0f}",
                     f"{ratio:.2f}x"))
    for line in markdown.table_lines(HEADER, rows):
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
