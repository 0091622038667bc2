"""Progress bars for long loops (``keras.utils.Progbar`` on stderr), quiet in CI or at verbosity 0.

stdout stays for results (tools print JSON there). On a terminal the bar
updates in place; otherwise (logs, pipes) it prints one line when the loop
ends. The tools set the level from ``--verbose``; the environment variable
``CI`` (set by CI services) turns bars off.
"""

import contextlib
import os
import sys

_level = 1


def set_verbosity(level: int) -> None:
    """0: no progress bars; 1 (default): bars on loops that call :func:`bar`."""
    global _level
    _level = int(level)


def enabled() -> bool:
    """True unless verbosity is 0 or the environment says CI."""
    return _level > 0 and os.environ.get("CI", "").lower() in ("", "0", "false")


def bar(iterable, total: int | None = None, label: str | None = None):
    """Yields the items of ``iterable``, advancing a progress bar of ``total`` steps (None: unknown).

    ``total`` defaults to ``len(iterable)``, or a ``tf.data.Dataset``'s
    cardinality when known.
    """
    if not enabled():
        yield from iterable
        return
    import keras  # here, not at the top: the tools import this module before --help, which must not load Keras

    total = _length(iterable) if total is None else total
    interactive = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    with contextlib.redirect_stdout(sys.stderr):  # Progbar writes to stdout
        if label:
            print(label)
        progbar = keras.utils.Progbar(total, verbose=1 if interactive else 2, unit_name="batch")
    seen = 0
    for item in iterable:
        yield item
        seen += 1
        with contextlib.redirect_stdout(sys.stderr):
            progbar.update(seen, finalize=False)
    with contextlib.redirect_stdout(sys.stderr):
        progbar.update(seen, finalize=True)


def _length(iterable) -> int | None:
    cardinality = getattr(iterable, "cardinality", None)
    if cardinality is not None:
        n = int(cardinality())
        return n if n >= 0 else None
    try:
        return len(iterable)
    except TypeError:
        return None
