"""The transfer report: generators and iterative baselines from the same surrogates, measured on unseen models.

    report = run_transfer(surrogate="fashion_mnist_small_cnn", generators=["fashion_mnist_transfer_ltp"],
                          targets=["fashion_mnist_mlp", ...], defended=["fashion_mnist_pgd_defense_linf"],
                          norm="linf", eps=0.1, split="test[:1000]", output_dir="runs/transfer/report")

What runs (same images, same budget, every image checked against it in float64):

* each generator (a zoo entry or a run folder's ``attacker.keras``), its surrogates read from what it trained
  against;
* baselines on ``surrogate``: PGD, MI-FGSM, DI-FGSM with TI (M-DI2-FGSM + TI, :mod:`tfadv.transfer_attacks`),
  all 10 steps, and SGD-UAP (one universal perturbation fitted on training images) beside any universal
  generator entries given;
* optionally Square with scores only on each unseen target, from scratch and from each generator's x_hat
  (:func:`tfadv.transfer.query_table`).

Outputs: ``report.md`` with the tables, ``transfer_heatmap.png`` (fooling rate, attack x target) and
``transfer.json``; ``record`` adds the table to each generator entry's metrics as ``transfer_<norm>_<eps>``.
"""

import os

import numpy as np
import tensorflow as tf

from tfadv import attacks, data, figures, report, transfer_attacks, universal_attacks, zoo
from tfadv.errors import ConfigError
from tfadv.runs import load_run
from tfadv.targets import ensemble_members, load_target
from tfadv.transfer import TransferAttack, query_table, transfer_table

BASELINES = ("pgd", "mi_fgsm", "di_ti_fgsm", "sgd_uap")
STEPS = 10  # the iterative baselines' steps (the transfer benchmarks' usual 10)


def load_generator(name: str, zoo_dir=None):
    """(x -> x_hat callable, its surrogate names, its budget) of a zoo generator entry or a run folder."""
    if os.path.isdir(name) and os.path.isfile(os.path.join(name, "config.json")):
        cfg, model = load_run(name)
        return (lambda x: model(x, training=False)), ensemble_members(cfg.target), (cfg.norm, cfg.eps)
    entry = zoo.entry(name, zoo_dir)
    if entry["kind"] not in ("perturbation", "universal"):
        raise ConfigError(f"Zoo entry {name!r} is a {entry['kind']}, not a generator (perturbation or universal).")
    budget = entry.get("budget") or {}
    layer = zoo.keras_layer(name, zoo_dir)
    return (lambda x: layer(x)), ensemble_members(entry["target"]), (budget.get("norm"), budget.get("eps"))


def _batched(fn, batch_size=500):
    def make(x, labels):
        return np.concatenate([np.asarray(fn(tf.constant(x[i:i + batch_size]), tf.constant(labels[i:i + batch_size])))
                               for i in range(0, len(x), batch_size)])
    return make


def baseline_attacks(names, surrogate: str, norm: str, eps: float, train_images=None, zoo_dir=None,
                     target_class: int | None = None) -> dict:
    """The iterative and universal baselines on ``surrogate`` (a target string), as :class:`TransferAttack`.
    With ``target_class`` they aim at that class (PGD's and SGD-UAP's targeted cross-entropy; MI- and DI-FGSM
    are untargeted here, so they are refused)."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ConfigError(f"Unknown baseline {', '.join(unknown)}. Known: {', '.join(BASELINES)}.")
    if target_class is not None and set(names) - {"pgd", "sgd_uap"}:
        raise ConfigError("A targeted table's baselines are pgd and sgd_uap (MI- and DI-FGSM here are untargeted).")
    aim = {"loss": "targeted", "target_class": target_class} if target_class is not None else {}
    model, surrogates = load_target(surrogate, zoo_dir), ensemble_members(surrogate)
    made = {}
    for name in names:
        if name == "pgd":
            fn = _batched(lambda x, y: attacks.pgd(model, x, y, eps=eps, norm=norm, steps=STEPS, **aim))
        elif name == "mi_fgsm":
            fn = _batched(lambda x, y: transfer_attacks.mi_fgsm(model, x, y, eps=eps, norm=norm, steps=STEPS))
        elif name == "di_ti_fgsm":
            fn = _batched(lambda x, y: transfer_attacks.di_fgsm(model, x, y, eps=eps, norm=norm, steps=STEPS,
                                                                translation_kernel=5))
        else:
            if train_images is None:
                raise ConfigError("The sgd_uap baseline needs training images to fit its perturbation on.")
            u = universal_attacks.universal_sgd(model, train_images, eps=eps, norm=norm, epochs=2, **aim)
            fn = (lambda u: lambda x, y: np.clip(x + np.asarray(u), 0.0, 1.0))(u)
        label = {"pgd": f"PGD-{STEPS}", "mi_fgsm": f"MI-FGSM-{STEPS}", "di_ti_fgsm": f"DI-TI-FGSM-{STEPS}",
                 "sgd_uap": "SGD-UAP"}[name]
        made[label + (f" to {target_class}" if target_class is not None else "")] = TransferAttack(fn, surrogates)
    return made


def run_transfer(*, surrogate: str, generators=(), targets=(), defended=(), norm: str = "linf", eps: float = 0.1,
                 dataset: str = "fashion_mnist", split: str = "test[:1000]", baselines=BASELINES,
                 target_class: int | None = None, square_queries: int = 0, square_examples: int = 200,
                 output_dir: str | None = None, command: str = "", record: bool = False, zoo_dir=None,
                 idx_dir=None) -> dict:
    """Runs the transfer table (and the Square query table when ``square_queries``); see the module doc."""
    x, y, info = data.load_arrays(dataset, split, idx_dir=idx_dir)
    source = f"{info.source}:{info.location}"
    attack_set = {}
    for name in generators:
        make, surrogates, budget = load_generator(name, zoo_dir)
        if budget != (norm, eps):
            raise ConfigError(f"Generator {name!r} has budget {budget[0]} {budget[1]}; this table is at {norm} "
                              f"{eps}: compare like with like.")
        attack_set[name] = TransferAttack(_batched(lambda x_, y_, make=make: make(x_)), surrogates)
    train = None
    if "sgd_uap" in baselines:
        train, _ = data.load(dataset, "train[:10%]", batch_size=128, shuffle=True, idx_dir=idx_dir)
    attack_set.update(baseline_attacks(baselines, surrogate, norm, eps, train, zoo_dir, target_class))
    models = {name: load_target(name, zoo_dir) for name in [*targets, *defended]}
    table = transfer_table(attack_set, models, x, y, norm=norm, eps=eps, defended=set(defended),
                           target_class=target_class)
    table.update(split=split, data_source=source, surrogate=surrogate, command=command)
    if square_queries:
        seen = set().union(*(a.surrogates for a in attack_set.values()))
        unseen = {n: m for n, m in models.items() if n not in seen and n not in defended}
        priors = {name: attack_set[name].make for name in generators}
        table["square"] = query_table(unseen, x[:square_examples], y[:square_examples], norm=norm, eps=eps,
                                      priors=priors, n_queries=square_queries)
        table["square_examples"] = min(square_examples, len(x))
    if output_dir:
        write(table, output_dir)
    if record:
        for name in generators:
            if name in zoo.read_registry(zoo_dir):
                zoo.add_metrics(name, {f"transfer_{norm}_{eps:g}": recorded(table, name)}, zoo_dir)
    return table


def recorded(table: dict, generator: str) -> dict:
    """What a generator's entry keeps of the table: its row, the baselines' means, and how it was measured."""
    rows = {row["attack"]: row for row in table["rows"]}
    mine = rows[generator]
    return {"fooling_rate": mine["fooling_rate"], "adv_accuracy": mine["adv_accuracy"],
            "unseen_mean": mine["unseen_mean"], "defended_mean": mine["defended_mean"],
            "surrogates": mine["surrogates"],
            "baselines_unseen_mean": {a: r["unseen_mean"] for a, r in rows.items() if a != generator},
            "square": [r for r in table.get("square", []) if r["start"] in ("square", f"square from {generator}")],
            **({"target_class": table["target_class"], "targeted_success": mine["targeted_success"],
                "unseen_targeted_mean": mine["unseen_targeted_mean"]} if table.get("target_class") is not None else {}),
            **{k: table[k] for k in ("split", "data_source", "command", "num_examples", "norm", "eps")}}


def _short(target: str) -> str:
    """A target's column name: a zoo name without the dataset prefix, a file by its name."""
    return os.path.basename(target.rstrip("/")).removeprefix("fashion_mnist_")


def _percent(value):
    return None if value is None else f"{100 * value:.1f}%"


def write(table: dict, output_dir: str) -> str:
    """report.md, transfer_heatmap.png and transfer.json of a table in ``output_dir``; returns the report path."""
    import json

    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "transfer.json"), "w") as f:
        json.dump(table, f, indent=2)
    targets = list(table["clean_accuracy"])
    budget = f"{table['norm']} {table['eps']:g}"
    columns = [("attack", "attack (surrogates)")] + [(t, _short(t)) for t in targets] + [
        ("unseen_mean", "mean, unseen undefended"), ("defended_mean", "mean, defended")]
    rows = [{"attack": f"{_short(r['attack'])} ({'+'.join(_short(s) for s in r['surrogates'])})",
             **{t: _percent(r["fooling_rate"][t]) + (" (surrogate)" if t in r["surrogates"] else "")
                for t in targets}, "unseen_mean": _percent(r["unseen_mean"]),
             "defended_mean": _percent(r["defended_mean"])} for r in table["rows"]]
    clean = [{"attack": "clean accuracy", **{t: _percent(v) for t, v in table["clean_accuracy"].items()}}]
    tables = [(f"Fooling rate at {budget} ({table['num_examples']} images of {table['split']})", columns, rows),
              ("Clean accuracy of the targets", columns[:-2], clean)]
    if table.get("target_class") is not None:
        targeted = [{"attack": r["attack"], **{t: _percent(r["targeted_success"][t]) for t in targets},
                     "unseen_mean": _percent(r["unseen_targeted_mean"])} for r in table["rows"]]
        tables.append((f"Targeted success: images sent to class {table['target_class']}", columns[:-1], targeted))
    if table.get("square"):
        budgets = [k for k in table["square"][0] if k.startswith("success_at_")]
        qcols = [("target", "target"), ("start", "start")] + [(b, b.replace("_", " ")) for b in budgets] + [
            ("success", "success"), ("median_queries", "median queries to success")]
        qrows = [{**r, **{b: _percent(r[b]) for b in budgets + ["success"]},
                  "target": _short(r["target"]), "start": r["start"].replace("fashion_mnist_", ""),
                  "median_queries": None if r["median_queries"] is None else f"{r['median_queries']:g}"}
                 for r in table["square"]]
        tables.append((f"Square with scores only, {table['square_examples']} images, {budget}", qcols, qrows))
    shading = np.array([[r["fooling_rate"][t] or 0.0 for t in targets] for r in table["rows"]])
    texts = [[f"{100 * v:.0f}" + ("*" if t in r["surrogates"] else "") for v, t in zip(row, targets)]
             for row, r in zip(shading, table["rows"])]
    heatmap = figures.heatmap_figure(
        shading, texts, [_short(r["attack"]) for r in table["rows"]], [_short(t) for t in targets],
        cell=36, scale=1,
        title=f"fooling rate, percent: {budget}, {table['num_examples']} images of {table['split']}.  "
              "* white-box: the attack's surrogate")
    notes = ["fooling rate: among the images a target classifies correctly, the share the attack makes it "
             "misclassify; a surrogate's own column is white-box, not transfer, and is left out of the means.",
             f"data: {table['split']} of {table['data_source']}"]
    return report.write_report(output_dir, f"Transfer attacks from {table['surrogate']}", tables=tables,
                               figures={"transfer_heatmap": heatmap}, command=table["command"],
                               data_source=table["data_source"], notes=notes)


__all__ = ["BASELINES", "baseline_attacks", "load_generator", "run_transfer", "write"]
