"""The traced loops of the attacks, kept per (classifier, settings) so that later batches reuse a trace.

Every attack that compiles its step loop (``tfadv.attacks``, ``tfadv.transfer_attacks``, the AutoAttack stages)
keeps one :class:`CompiledLoops`:

    found = _LOOPS.find(classifier, settings)
    if found is not None:
        return found
    ...                                     # build the tf.function `run`
    return _LOOPS.keep(classifier, settings, run)

A loop is found only for the very classifier object it was traced for (a new object that reuses a freed
object's id misses), and a cache of more than ``limit`` loops is emptied before the next is kept, so a long
session that attacks many models does not hold them all.
"""


class CompiledLoops:
    """Traced loops keyed by ``(id(classifier), *settings)``, each kept with the classifier it was traced for."""

    def __init__(self, limit: int = 16):
        self.limit = limit
        self._loops: dict = {}

    def find(self, classifier, settings: tuple):
        """The loop kept for this classifier and these settings, or None."""
        found = self._loops.get((id(classifier), *settings))
        return found[1] if found is not None and found[0] is classifier else None

    def keep(self, classifier, settings: tuple, run):
        """Keeps ``run`` for this classifier and these settings; returns it."""
        if len(self._loops) > self.limit:
            self._loops.clear()
        self._loops[(id(classifier), *settings)] = (classifier, run)
        return run
