"""The benchmarks behind ``tools/benchmark_*.py``: one module per benchmark, each measuring and formatting its table.

* :mod:`~tfadv.benchmarks.perturbation`: zoo generators against PGD, at equal time too; training-step times;
* :mod:`~tfadv.benchmarks.attack_strength`: a generator, refined by k PGD steps, against PGD and AutoAttack;
* :mod:`~tfadv.benchmarks.autoattack`: native AutoAttack stages against ART's, on the same images;
* :mod:`~tfadv.benchmarks.universal`: a generator's universal perturbation against iterative UAP and SGD-UAP;
* :mod:`~tfadv.benchmarks.defense`: each defense's training step, its cost against the first;
* :mod:`~tfadv.benchmarks.step`: an ImageNet-size generator's training step by precision and XLA;
* :mod:`~tfadv.benchmarks.style`: the style networks' forward time and parameters.

Speed figures come from :func:`tfadv.timing.timed_calls` (where a benchmark times calls, not one ``fit``), tables
from :mod:`tfadv.markdown`, and the images the attack strength benchmark scores pass
:func:`tfadv.budgets.check_inside_budget` first. The tools parse flags, call in here and print; they import these
modules inside ``main`` (``--help`` loads no TensorFlow), but for :mod:`~tfadv.benchmarks.autoattack`, whose
``ROWS`` a flag names: it imports TensorFlow only when a row runs.
"""
