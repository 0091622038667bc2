"""Security curves: a classifier's accuracy against the size of the budget.

One robustness figure at one eps says little about a defense. Across budgets around its training budget the
accuracy under a sound attack must fall as eps grows and reach chance or below well before eps reaches the image
range; a curve that stays flat, or an attack that is weaker at a larger eps, points at gradient masking
(Carlini et al. 2019, "On evaluating adversarial robustness"). Each point here is PGD with restarts that count a
success (:func:`tfadv.attacks.pgd`) and the standard AutoAttack (:mod:`tfadv.autoattack`), on the same first
test images; the registry keeps the curve as ``security_curve_<norm>`` and :func:`figure` draws it.
"""

import time

import numpy as np

from tfadv import figures
from tfadv.budgets import check_budget
from tfadv.errors import ConfigError

COLORS = ((0.85, 0.0, 0.0), (0.0, 0.3, 0.8), (0.0, 0.5, 0.0), (0.6, 0.3, 0.0))


def check_eps_values(norm: str, eps_values, image_shape=None) -> list[float]:
    """The budgets as a sorted list of distinct valid radii (below the image cube's diameter when ``image_shape``
    (H, W, C) is given); a one-line ConfigError otherwise."""
    values = [check_budget(norm, eps, image_shape) for eps in eps_values]
    if len(values) < 2 or values != sorted(set(values)):
        raise ConfigError(f"A security curve needs two or more distinct budgets in increasing order. "
                          f"Received: {list(eps_values)!r}")
    return values


def measure(classifier, images, labels, *, norm: str, eps_values, pgd_steps: int = 100, pgd_restarts: int = 2,
            autoattack_examples: int | None = None, version: str = "standard", autoattack_settings=None,
            batch_size: int = 500, seed: int = 0, log=None) -> dict:
    """Accuracy under PGD and AutoAttack at each budget in ``eps_values`` (increasing).

    Args:
        classifier: [0, 1] images -> logits (a SavedModel's ``serve``, a Keras model, a function).
        images, labels: the test images [N, H, W, C] in [0, 1] and their labels [N].
        pgd_steps, pgd_restarts: PGD at each budget (step size: tfadv.attacks.pgd's default for the budget).
        autoattack_examples: AutoAttack on the first this many images (default: all N); 0 leaves it out.
        version, autoattack_settings: AutoAttack's version (``"standard"``, or ``"custom"`` with settings that
            override ``tfadv.autoattack.STANDARD``; the curve records them).
    Returns:
        JSON-ready ``{"norm", "eps", "clean", "pgd<steps>x<restarts>": [...], "autoattack": [...], ...}``.
    """
    from tfadv import autoattack
    from tfadv.attacks import pgd

    images, labels = np.asarray(images, np.float32), np.asarray(labels, np.int64)
    eps_values = check_eps_values(norm, eps_values, images.shape[1:])
    count = len(images) if autoattack_examples is None else min(int(autoattack_examples), len(images))
    log = log or (lambda line: None)
    started = time.time()
    clean = float(np.mean(autoattack.predict(classifier, images, batch_size) == labels))
    pgd_column, aa_column, aa_settings = f"pgd{pgd_steps}x{pgd_restarts}", [], None
    pgd_accuracy = []
    for eps in eps_values:
        correct = 0
        for start in range(0, len(images), batch_size):
            x, y = images[start:start + batch_size], labels[start:start + batch_size]
            x_adv = pgd(classifier, x, y, eps=eps, norm=norm, steps=pgd_steps, restarts=pgd_restarts)
            correct += int(np.sum(autoattack.predict(classifier, np.asarray(x_adv), batch_size) == y))
        pgd_accuracy.append(correct / len(images))
        line = f"eps {eps:g}: PGD-{pgd_steps}x{pgd_restarts} {pgd_accuracy[-1]:.4f}"
        if count:
            result = autoattack.evaluate(classifier, images[:count], labels[:count], norm=norm, eps=eps,
                                         version=version, batch_size=batch_size, seed=seed,
                                         **(autoattack_settings or {}))
            aa_column.append(result["robust_accuracy"])
            aa_settings = {k: v for k, v in result["settings"].items() if k != "eps"}
            line += f", AutoAttack {aa_column[-1]:.4f}"
        log(line + f" ({time.time() - started:.0f}s)")
    curve = {"norm": norm, "eps": eps_values, "clean": clean, pgd_column: pgd_accuracy,
             "num_examples": len(images), "pgd_steps": pgd_steps, "pgd_restarts": pgd_restarts}
    if count:
        curve.update({autoattack.COLUMNS[version]: aa_column, "autoattack_examples": count,
                      "autoattack_settings": aa_settings})
    curve["seconds"] = round(time.time() - started, 1)
    return curve


def series(curve: dict) -> dict:
    """The curve's attack columns: {column name: [accuracy at each eps]}."""
    return {k: v for k, v in curve.items() if isinstance(v, list) and k != "eps"}


def _legend_label(curve: dict, column: str) -> str:
    """The column's name and how many images it ran on (AutoAttack may run on fewer than PGD)."""
    count = curve.get("autoattack_examples") if column.startswith("autoattack") else curve.get("num_examples")
    return column if count is None else f"{column}, {count} images"


def record(name: str, curve: dict, zoo_dir=None) -> str:
    """Writes ``curve`` into zoo entry ``name``'s metrics as ``security_curve_<norm>`` (the artifact and its
    checksum stay as they are); returns the key."""
    from tfadv import zoo

    key = f"security_curve_{curve['norm']}"
    zoo.add_metrics(name, {key: curve}, zoo_dir)
    return key


def figure(curve: dict, *, title: str = "", height: int = 300, width: int = 480) -> np.ndarray:
    """The curve as an RGB line chart [H, W, 3] in [0, 1]: accuracy (0 to 1) against eps, one line per attack,
    a legend naming each with its image count, the clean accuracy as a grey line."""
    canvas = np.ones((height, width, 3), np.float32)
    top, bottom, left, right = 44, height - 34, 52, width - 16
    eps = np.asarray(curve["eps"], float)
    span = eps[-1] - eps[0]

    def point(x, y):
        return (bottom - y * (bottom - top), left + (x - eps[0]) / span * (right - left))

    def line(p0, p1, color, thickness=2):
        n = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
        for r, c in zip(np.linspace(p0[0], p1[0], n), np.linspace(p0[1], p1[1], n)):
            r, c = int(round(r)), int(round(c))
            canvas[max(r - thickness // 2, 0):r + thickness - thickness // 2,
                   max(c - thickness // 2, 0):c + thickness - thickness // 2] = color

    line((top, left), (bottom, left), figures.BLACK, 1)
    line((bottom, left), (bottom, right), figures.BLACK, 1)
    text_h = figures.text_size("")[0]  # one line of text at scale 1
    for y in (0.0, 0.25, 0.5, 0.75, 1.0):
        row = int(round(point(eps[0], y)[0]))
        line((row, left - 4), (row, left), figures.BLACK, 1)
        label = f"{y:.2f}"
        figures.draw_text(canvas, label, row - text_h // 2, left - 6 - figures.text_size(label)[1])
    for x in eps:
        col = int(round(point(x, 0.0)[1]))
        line((bottom, col), (bottom + 4, col), figures.BLACK, 1)
        label = f"{x:g}"
        figures.draw_text(canvas, label, bottom + 5, col - figures.text_size(label)[1] // 2)
    axis = f"eps ({curve['norm'].replace('linf', 'L-inf').replace('l2', 'L2')})"
    figures.draw_text(canvas, axis, height - text_h - 1, (left + right - figures.text_size(axis)[1]) // 2)
    accuracy_w = figures.text_size("accuracy")[1]
    figures.draw_text_upright(canvas, "accuracy", (top + bottom - accuracy_w) // 2, 2)
    line(point(eps[0], curve["clean"]), point(eps[-1], curve["clean"]), figures.GREY, 1)
    legend = [("clean", figures.GREY)]
    for (column, values), color in zip(series(curve).items(), COLORS):
        points = [point(x, y) for x, y in zip(eps, values)]
        for p0, p1 in zip(points, points[1:]):
            line(p0, p1, color)
        for p in points:
            line((p[0] - 2, p[1]), (p[0] + 2, p[1]), color, 5)
        legend.append((_legend_label(curve, column), color))
    col = left + 8
    for label, color in legend:
        canvas[top - 25:top - 19, col:col + 12] = color
        figures.draw_text(canvas, label, top - 22 - text_h // 2, col + 16)  # centred on its swatch
        col += 16 + figures.text_size(label)[1] + 14
    if title:
        figures.draw_text(canvas, title, 2, 4)
    return canvas
