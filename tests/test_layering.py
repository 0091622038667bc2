"""The house's layering: every tfadv import (module-level or inside a function) points down or sideways.

Layers, bottom to top: foundations (data, budgets, losses, figures, ...) < models, attacks and the zoo <
trainers and measuring < configs (schema, recipes) < tasks < jobs (training, export, reports, benchmarks) < the CLI.
A module may import its own layer or a lower one; the tests read the source, so a lazy import counts too.

Configs are leaf data: ``tfadv.schema`` and ``tfadv.config`` sit in the configs layer by what imports them, but
import nothing above the foundations they describe, and no registry of code even there (``LEAF_DATA``): the
names a config gives are checked by its task.
"""

import ast
import os

import pytest

import tfadv

ROOT = os.path.dirname(tfadv.__file__)
LAYERS = [
    {"tfadv", "errors", "registry", "config", "inputs", "budgets", "losses", "distribute", "progress", "quiet",
     "compiled", "serialization", "data", "metrics", "callbacks", "figures", "faults", "backup", "markdown",
     "timing"},
    {"models", "zoo", "attacks", "universal_attacks", "transfer_attacks", "savedmodel", "targets"},
    {"trainers", "evaluation", "autoattack", "security_curve", "style_evaluation", "transfer"},
    {"schema", "recipes", "experiments"},
    {"tasks"},
    {"runs", "training", "export", "defense_report", "report", "entry_report", "sweep", "stylize", "byo", "presets",
     "adversarial_training", "transfer_report", "attack_job", "benchmarks"},
    {"cli"},
]
# Leaf data: what each may import. Datasets' facts (shapes, classes, splits) and the budget arithmetic are data
# about data; models, generators, losses, attacks, trainers, targets and tasks are code found by name.
LEAF_DATA = {"tfadv.config": {"errors"}, "tfadv.schema": {"errors", "config", "data", "budgets"}}
# measuring never trains
NOT_TRAINING = {"export", "defense_report", "report", "entry_report", "evaluation", "runs", "sweep", "security_curve",
                "style_evaluation", "transfer", "transfer_report"}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    for level, names in enumerate(LAYERS):
        if top in names:
            return level
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layering.py")


def modules():
    for root, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                yield rel.removesuffix(".__init__"), path


def imports(path: str):
    """The tfadv modules ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tfadv":
            found.add(node.module)
            for alias in node.names:  # `from tfadv import data`: the submodule
                if os.path.exists(os.path.join(ROOT, *node.module.split(".")[1:], alias.name + ".py")) or \
                        os.path.isdir(os.path.join(ROOT, *node.module.split(".")[1:], alias.name)):
                    found.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "tfadv"}
    return found


MODULES = dict(modules())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_points_up(module):
    own = layer_of(module)
    upward = sorted(target for target in imports(MODULES[module]) if layer_of(target) > own)
    assert not upward, f"{module} (layer {own}) imports higher layers: {upward}"


@pytest.mark.parametrize("module", sorted(LEAF_DATA))
def test_configs_are_leaf_data(module):
    imported = {target.split(".")[1] for target in imports(MODULES[module]) if "." in target}
    assert imported <= LEAF_DATA[module], f"{module} imports {sorted(imported - LEAF_DATA[module])}: configs are " \
        "leaf data (check names in the task's check(), tfadv.tasks)"
    assert max(layer_of(f"tfadv.{name}") for name in LEAF_DATA[module]) == 0  # foundations only


def test_the_leaf_check_sees_a_lazy_registry_import(tmp_path):
    """DefenseExperiment.validate used to import tfadv.trainers.defense inside the method."""
    (tmp_path / "schema.py").write_text("def validate():\n    from tfadv.trainers.defense import DEFENSES\n")
    assert "trainers" in {target.split(".")[1] for target in imports(str(tmp_path / "schema.py"))}


def test_measuring_and_reporting_do_not_import_training():
    offenders = {module: sorted(t for t in imports(path) if t.startswith("tfadv.training"))
                 for module, path in MODULES.items() if module.split(".")[-1] in NOT_TRAINING}
    assert not any(offenders.values()), offenders


def module_level_imports(path: str, modules) -> set:
    """The tfadv modules (of ``modules``) that ``path`` imports at module level, however it spells them:
    ``from tfadv.a import f``, ``from tfadv import a`` (the submodule), ``import tfadv.a``."""
    found = set()
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tfadv":
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name in modules}


def find_cycle(graph: dict) -> list | None:
    """A cycle of ``graph`` (module -> imported modules) as a path, or None. A package importing its own
    submodules (or a submodule its package) is not a cycle: Python resolves that order by design."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open" and not nxt.startswith(node + ".") and not node.startswith(nxt + "."):
                return stack + [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, stack + [node])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            if cycle:
                return cycle
    return None


def import_graph(modules: dict) -> dict:
    return {module: module_level_imports(path, modules) - {module} for module, path in modules.items()}


def test_module_level_imports_have_no_cycle():
    cycle = find_cycle(import_graph(MODULES))
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_check_sees_every_spelling_of_an_import(tmp_path):
    """An injected runs <-> export cycle written as ``from tfadv import x`` used to pass every layering test."""
    for spelling in ("from tfadv import {}", "from tfadv.{} import something", "import tfadv.{}"):
        (tmp_path / "runs.py").write_text(spelling.format("export") + "\n")
        (tmp_path / "export.py").write_text(spelling.format("runs") + "\n")
        modules = {**MODULES, "tfadv.runs": str(tmp_path / "runs.py"), "tfadv.export": str(tmp_path / "export.py")}
        cycle = find_cycle(import_graph(modules))
        assert cycle and {"tfadv.runs", "tfadv.export"} <= set(cycle), spelling
