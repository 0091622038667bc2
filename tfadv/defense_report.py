"""Honest evaluation of defended classifiers: every attack a defense must survive, in one table.

Accuracy on the test split under: no attack; the co-trained generator (co_trained
defenses: the zoo entry ``<name>_generator`` that export writes beside the
classifier); a fresh U-Net generator trained from scratch against the frozen
classifier; PGD with many steps and random restarts; the undefended
classifier's zoo perturbations of the same norm (transfer; projected onto the
eps-ball when trained with a larger budget). All attacks use the same (norm, eps).
"""

import time

import tensorflow as tf

from tfadv import data as data_lib
from tfadv import evaluation, progress, zoo
from tfadv.errors import ConfigError, ZooError
from tfadv.markdown import table as markdown_table  # this module's own markdown() is its rows' table
from tfadv.attacks import get_attack, pgd
from tfadv.budgets import bounded_perturbation


def _accuracy_under(classifier, ds, attack=None, label=None) -> float:
    correct = total = 0
    for x, y in progress.bar(ds, label=label):
        x_in = attack(x, y) if attack else x
        correct += int(tf.reduce_sum(tf.cast(tf.argmax(classifier(x_in), -1, output_type=tf.int32) == y, tf.int32)))
        total += int(y.shape[0])
    return correct / total


def co_trained_generator(name, registry, zoo_dir=None):
    """The ``serve`` of the generator trained together with zoo classifier ``name`` (co_trained defenses), or None."""
    for entry_name, entry in sorted(registry.items()):
        if entry.get("co_trained") and entry.get("target") == name:
            return zoo.load(entry_name, zoo_dir).serve
    return None


def transfer_attacks(registry, undefended, norm, eps, zoo_dir=None) -> dict:
    """Column name -> x -> x_adv for the undefended classifier's zoo perturbations of this norm.

    An entry whose budget exceeds ``eps`` is kept with its delta projected onto
    the eps-ball (column ``transfer:NAME@EPS``), so every attack in the table
    plays by the same budget.
    """
    attacks = {}
    for name, entry in sorted(registry.items()):
        budget = entry.get("budget") or {}
        if entry["kind"] not in ("perturbation", "universal") or entry.get("target") != undefended \
                or budget.get("norm") != norm:
            continue
        serve = zoo.load(name, zoo_dir).serve
        if budget["eps"] <= eps + 1e-9:
            attacks[f"transfer:{name}"] = lambda x, serve=serve: serve(x)
        else:
            attacks[f"transfer:{name}@{eps:g}"] = lambda x, serve=serve: bounded_perturbation(
                x, serve(x) - x, norm, eps, rule="project")
    return attacks


def report(defended, undefended, norm, eps, *, fresh_generator, zoo_dir=None, idx_dir=None, pgd_steps=100,
           pgd_restarts=2, pgd_examples=1000, attacks=(), fixed_only=False, pgd_only=False,
           baseline_row=True) -> list[dict]:
    """One dict per classifier (undefended first) with its accuracy under each attack, plus seconds spent.

    Args:
        defended: zoo names of defended classifiers; undefended: the baseline zoo classifier.
        norm, eps: the budget every attack uses.
        fresh_generator: ``zoo name -> x -> x_hat``, a generator trained from scratch against that frozen
            classifier at (norm, eps) (``tfadv.training.fresh_generator`` with its settings bound; reporting
            does not train).
        zoo_dir: the zoo (default: tfadv.zoo.default_zoo_dir()); idx_dir: local IDX files of the dataset.
        pgd_steps, pgd_restarts, pgd_examples: PGD on the first ``pgd_examples`` test images.
        attacks: more registered attacks (``tfadv.attacks.ATTACKS``) at their default settings, each a column
            of its name, on the same images as PGD.
        fixed_only: only the columns of fixed artifacts (clean, co-trained generator, transfer), e.g. after a
            zoo perturbation was retrained; ``fresh_generator`` may then be None.
        pgd_only: only clean accuracy and the PGD column, e.g. to re-measure PGD after a change to the attack
            (restarts that count a success); ``fresh_generator`` may then be None.
        baseline_row: also a row for the undefended classifier (without it, that classifier only supplies the
            transfer columns: its row, measured once, need not be trained against again for every new defense).
    """
    started = time.time()
    if fixed_only and pgd_only:
        raise ConfigError("fixed_only and pgd_only each re-measure part of a table: give one of them.")
    for attack_name in attacks:
        get_attack(attack_name)  # a clear error for an unknown attack, before hours of work
    registry = zoo.read_registry(zoo_dir)
    for name in [undefended] + list(defended):
        zoo.entry(name, zoo_dir)  # a clear error for an unknown name, before hours of work
    test_ds, _ = data_lib.load(registry[undefended]["dataset"], "test", batch_size=500, idx_dir=idx_dir)
    pgd_ds = test_ds.unbatch().take(pgd_examples).batch(500)
    transfer = transfer_attacks(registry, undefended, norm, eps, zoo_dir)
    rows = []
    for name in ([undefended] if baseline_row else []) + list(defended):
        classifier = zoo.load(name, zoo_dir).serve
        row = {"classifier": name, "clean": _accuracy_under(classifier, test_ds, label=f"{name}: clean")}
        if pgd_only:
            row[f"pgd{pgd_steps}x{pgd_restarts}"] = _pgd_accuracy(classifier, pgd_ds, name, norm, eps, pgd_steps,
                                                                   pgd_restarts)
            rows.append({**row, "seconds": round(time.time() - started, 1)})
            continue
        co_trained = co_trained_generator(name, registry, zoo_dir)
        if co_trained is not None:
            row["co_trained_generator"] = _accuracy_under(classifier, test_ds, lambda x, y: co_trained(x))
        for column, attack in transfer.items():
            row[column] = _accuracy_under(classifier, test_ds, lambda x, y: attack(x))
        if fixed_only:
            rows.append({**row, "seconds": round(time.time() - started, 1)})
            continue
        row["fresh_generator"] = evaluation.measure_attack(fresh_generator(name), classifier, test_ds)["adv_accuracy"]
        row[f"pgd{pgd_steps}x{pgd_restarts}"] = _pgd_accuracy(classifier, pgd_ds, name, norm, eps, pgd_steps,
                                                               pgd_restarts)
        for attack_name in attacks:
            attack_fn = get_attack(attack_name)
            row[attack_name] = _accuracy_under(classifier, pgd_ds,
                                               lambda x, y, fn=attack_fn: fn(classifier, x, y, eps=eps, norm=norm),
                                               label=f"{name}: {attack_name}")
        row["seconds"] = round(time.time() - started, 1)
        rows.append(row)
    return rows


def _pgd_accuracy(classifier, pgd_ds, name, norm, eps, steps, restarts) -> float:
    return _accuracy_under(classifier, pgd_ds, lambda x, y: pgd(classifier, x, y, eps=eps, norm=norm, steps=steps,
                                                                restarts=restarts), label=f"{name}: PGD-{steps}")


OTHER_TOOLS_COLUMNS = ("autoattack", "autoattack_custom", "autoattack_art_reduced")  # tools/autoattack.py: kept


def record(rows: list[dict], settings: dict, zoo_dir=None, update: bool = False) -> str:
    """Writes each row into its classifier's registry metrics under ``robustness_<norm>_<eps>``; returns the key.

    The row replaces the table's own columns; columns other tools measured on the same artifact stay. With
    ``update`` (a ``fixed_only`` or ``pgd_only`` report) the table keeps every other column and its settings, and
    appends the re-measured columns and ``settings`` to the list ``settings.updates``; a re-measured PGD column
    drops the table's ``pgd_restart_selection`` mark (PGD now counts a success, see :func:`tfadv.attacks.pgd`).
    """
    key = f"robustness_{settings['norm']}_{settings['eps']:g}"
    for row in rows:
        figures = {k: v for k, v in row.items() if k not in ("classifier", "seconds")}
        old = zoo.entry(row["classifier"], zoo_dir)["metrics"].get(key, {})
        if update:
            if not old:
                raise ZooError(f"{row['classifier']!r} has no {key} table to update: record a full one first.")
            present = zoo.read_registry(zoo_dir)
            stale = [c for c in old if c.startswith("transfer:")  # columns of entries gone from the zoo
                     and c.split(":", 1)[1].partition("@")[0] not in present]
            table = {k: v for k, v in old.items() if k not in stale}
            base = dict(old["settings"])
            if any(column.startswith("pgd") for column in figures):
                base.pop("pgd_restart_selection", None)
            updates = base.get("updates", []) + [{**settings, "columns": sorted(figures)}]
            table.update(figures, settings={**base, "updates": updates})
        else:
            kept = {column: old[column] for column in OTHER_TOOLS_COLUMNS if column in old}
            table = {**figures, **kept, "settings": settings}
        zoo.add_metrics(row["classifier"], {key: table}, zoo_dir)
    return key


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table (columns: the union of the rows' keys)."""
    columns = list(dict.fromkeys(k for row in sorted(rows, key=len, reverse=True) for k in row))
    return markdown_table(columns, ([f"{row[c]:.4f}" if isinstance(row.get(c), float) and c != "seconds"
                                     else row.get(c, "-") for c in columns] for row in rows))


def recorded_robustness(entry: dict) -> str:
    """The robustness tables recorded in zoo ``entry`` as Markdown ('' if none): per table (norm, eps), each
    column's accuracy and what measured it (AutoAttack's version and images; the other columns' settings)."""
    blocks = []
    for key in sorted(k for k in entry.get("metrics", {}) if k.startswith("robustness_")):
        table = entry["metrics"][key]
        settings = table.get("settings", {})
        cells = []
        for column, value in sorted(table.items()):
            if column == "settings":
                continue
            if isinstance(value, dict):  # an AutoAttack column: its own settings
                s = value.get("settings", {})
                what = (f"AutoAttack {s.get('version')} ({', '.join(s.get('stages', []))}), "
                        f"{value.get('split')}, {s.get('implementation') or s.get('library')}")
                value = value.get("robust_accuracy")
            else:
                what = _column_label(column, settings)
            cells.append((column, f"{value:.4f}", what))
        blocks.append(f"{key} (accuracy under attack; PGD and generators on the first "
                      f"{settings.get('pgd_examples', '?')} test images, clean on all):\n"
                      + markdown_table(("column", "accuracy", "what ran"), cells))
    return "\n\n".join(blocks)


def _column_label(column: str, settings: dict) -> str:
    if column.startswith("pgd"):
        steps, restarts = column[3:].split("x")
        label = f"PGD-{steps}, {restarts} random restarts"
        if settings.get("pgd_restart_selection") == "lowest-loss":
            label += " (recorded when restarts kept the lowest loss, not a success: an upper bound)"
        return label
    if column.startswith("transfer:"):
        return f"zoo attack {column.split(':', 1)[1]} (fixed; made against another classifier)"
    return {"clean": "no attack", "fresh_generator": "a generator trained from scratch against it",
            "co_trained_generator": "the generator trained together with it"}.get(column, column.replace("_", " "))
