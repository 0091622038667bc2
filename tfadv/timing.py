"""The one timing loop of tfadv's speed figures: untimed warm-up calls, then timed calls, seconds per call.

    seconds, outputs = timed_calls(lambda x, y: np.asarray(attack(x, y)), batches)   # every batch once
    seconds, _ = timed_calls(lambda: step(batch)["loss"].numpy(), [()] * 30, warmup=2)  # the same call 30 times
"""

import time
from typing import Callable, Sequence


def timed_calls(fn: Callable, inputs: Sequence[tuple], warmup: int = 1) -> tuple[float, list]:
    """Seconds per call of ``fn(*args)`` over every ``args`` of ``inputs``, and the calls' outputs in order.

    ``fn`` first runs ``warmup`` times on ``inputs[0]``, untimed: tracing and first-call costs are paid once per
    program, not per call. ``fn`` should return only once its work is done (read a result back, e.g. with
    ``np.asarray`` or ``.numpy()``): TensorFlow may return before a GPU has finished.
    """
    inputs = list(inputs)
    if not inputs:
        raise ValueError("timed_calls needs at least one call to time.")
    for _ in range(warmup):
        fn(*inputs[0])
    start = time.perf_counter()
    outputs = [fn(*args) for args in inputs]
    return (time.perf_counter() - start) / len(inputs), outputs
