"""tfadv's native AutoAttack stages against ART's, stage by stage, on the same images
(``tools/benchmark_autoattack.py``).

    rows = [run_row(row, classifier, images, labels, "linf", 0.1) for row in ROWS]
    print(table(rows))

Rows: ``native:<stage>`` / ``art:<stage>``, one stage alone with the settings the reduced ART version ran
(``REDUCED``); ``art-reduced``, that whole version through ART; ``native-reduced``, the same stages native;
``native-standard``, the native standard version. Each: robust accuracy and wall seconds (a native stage's first
call includes its tracing: a user pays it once per classifier and batch size). Imports no TensorFlow until a row
runs: the tool's flags name ``ROWS``.
"""

import time

from tfadv import markdown

REDUCED = dict(stages=["apgd-ce", "apgd-t", "square"], apgd_iter=100, targets=3, square_queries=500)
STAGE_ROWS = [f"{impl}:{stage}" for stage in REDUCED["stages"] for impl in ("native", "art")]
ROWS = STAGE_ROWS + ["art-reduced", "native-reduced", "native-standard"]


def run_row(row: str, serve, images, labels, norm: str, eps: float) -> dict:
    """One row: robust accuracy and seconds (also per 1,000 images) of the attack ``row`` names, with its stages
    and settings."""
    from tfadv import autoattack
    from tfadv.autoattack import art

    started = time.perf_counter()
    if row == "native-standard":
        result = autoattack.evaluate(serve, images, labels, norm=norm, eps=eps)
    elif row == "native-reduced":
        result = autoattack.evaluate(serve, images, labels, norm=norm, eps=eps, version="custom", **REDUCED)
    elif row == "art-reduced":
        result = art.evaluate(serve, images, labels, norm=norm, eps=eps, **REDUCED)
    else:
        impl, stage = row.split(":")
        settings = {**REDUCED, "stages": [stage]}
        result = (autoattack.evaluate(serve, images, labels, norm=norm, eps=eps, version="custom", **settings)
                  if impl == "native" else art.evaluate(serve, images, labels, norm=norm, eps=eps, **settings))
    seconds = time.perf_counter() - started
    return {"row": row, "robust_accuracy": result["robust_accuracy"], "seconds": round(seconds, 1),
            "seconds_per_1000": round(seconds * 1000 / len(labels), 1),
            "stages": result["stages"], "settings": result["settings"]}


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table: robust accuracy, seconds, seconds per 1,000 images."""
    return markdown.table(("row", "robust accuracy", "seconds", "seconds per 1,000 images"),
                          [(r["row"], f"{r['robust_accuracy']:.4f}", r["seconds"], r["seconds_per_1000"])
                           for r in rows])
