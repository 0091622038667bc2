"""One task per experiment kind: what the generic runner (``tfadv.training``) needs to know about it.

A :class:`~tfadv.tasks.base.Task` checks the names a config gives against the
registries that build them (``check``; :func:`checked` also validates the
values), builds its data and its (built, uncompiled) trainer from a config,
compiles it, draws its image panels, saves its artifacts into the run folder
and measures the result on the test split; it also names the file a run saves
(``artifact``). ``TASKS`` maps a config's ``kind`` to its
task; :func:`get_task` fails with the known kinds.

Adding a kind: a module here with a ``Task`` subclass, a line in ``TASKS``,
and its config class in ``tfadv.schema.KINDS``.
"""

from tfadv.errors import ConfigError
from tfadv.tasks.base import RunData, Task, labelled_data, load_split, own_data, use_own_data
from tfadv.tasks.classifier import ClassifierTask
from tfadv.tasks.defense import DefenseTask
from tfadv.tasks.perturbation import PerturbationTask
from tfadv.tasks.style import StyleTask

TASKS: dict[str, Task] = {task.kind: task for task in (ClassifierTask(), PerturbationTask(), DefenseTask(),
                                                         StyleTask())}


def get_task(kind: str) -> Task:
    """The task of experiment kind ``kind``."""
    if kind not in TASKS:
        raise ConfigError(f"Unknown experiment kind {kind!r}. Known kinds: {', '.join(sorted(TASKS))}.")
    return TASKS[kind]


def checked(cfg):
    """``cfg`` validated (its values) and checked by the task of its kind (its names), as its run records it."""
    return get_task(cfg.kind).check(cfg.validate())


__all__ = ["TASKS", "RunData", "Task", "checked", "get_task", "labelled_data", "load_split", "own_data", "use_own_data"]
