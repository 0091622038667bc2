"""Named fault points: where tests kill a training run or an export to check that nothing finished is lost.

Code that writes state calls ``faults.point("backup.weights_written")`` at
the moments a crash would be worst. Normally it does nothing. With the
environment variable ``TFADV_FAULT=NAME`` the process kills itself with
SIGKILL (no cleanup, no ``finally``: a power cut as far as the files can
tell) the first time it reaches point NAME; ``TFADV_FAULT=NAME@N`` at the
N-th time (e.g. the third epoch's backup). ``TFADV_FAULT=enospc:NAME[@N]``
raises ``OSError(ENOSPC)`` there instead, a disk that filled up.

The points, and what survives each, are listed in BUILD.md ("What survives
a crash") and exercised by ``tests/test_faults.py``.
"""

import collections
import errno
import os
import signal

ENV = "TFADV_FAULT"
POINTS = (
    "backup.weights_written",  # a checkpoint's weights are on disk, its state file is not
    "backup.before_commit",  # a checkpoint is complete in its temporary folder, not yet renamed into place
    "run.trained",  # the last epoch ended (its backup committed); nothing saved yet
    "run.saved",  # the trained model is saved; the test split is not measured yet
    "run.finished",  # metrics.json is written; backup/ not yet removed
    "zoo.staged",  # an export's SavedModel is written into its staging folder
    "zoo.moved_in",  # a commit moved the new SavedModel into place; the registry is not rewritten yet
)
_reached = collections.Counter()


def point(name: str) -> None:
    """Fault point ``name``: kills this process (or raises ENOSPC) when ``$TFADV_FAULT`` names it."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    if name not in POINTS:
        raise ValueError(f"Unknown fault point {name!r}: add it to tfadv.faults.POINTS.")
    action, _, where = spec.rpartition(":")
    wanted, _, nth = where.partition("@")
    if wanted != name:
        return
    _reached[name] += 1
    if _reached[name] != int(nth or 1):
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, f"No space left on device (injected at {name})")
    os.kill(os.getpid(), signal.SIGKILL)
