"""tfadv's native AutoAttack stages against ART's, stage by stage, on the same images
(``tools/benchmark_autoattack.py``).

    rows = [run_row(row, classifier, images, labels, "linf", 0.1) for row in ROWS]
    print(table(rows))

Rows: ``native:<stage>`` / ``art:<stage>``, one stage alone with the settings the reduced ART version ran
(``REDUCED``); ``art-reduced``, that whole version through ART; ``native-reduced``, the same stages native;
``native-standard``, the native standard version. Each: robust accuracy and wall seconds (a native stage's first
call includes its tracing: a user pays it once per classifier and batch size). Imports no TensorFlow until a row
runs: the tool's flags name ``ROWS``.

Each row also carries ``classifier_seconds``: how long the classifier's own passes take for the calls its stages
make (:func:`classifier_calls`, every target and query counted on every image a stage attacks), timed outside any
attack (:func:`per_image_seconds`, per image at the benchmark's batch; a stage's smaller batches run a little faster
or slower per image). It estimates the floor no implementation of those stages gets under on this machine, and
tells a slow implementation from costly settings.
"""

import time

from tfadv import markdown

REDUCED = dict(stages=["apgd-ce", "apgd-t", "square"], apgd_iter=100, targets=3, square_queries=500)
STAGE_ROWS = [f"{impl}:{stage}" for stage in REDUCED["stages"] for impl in ("native", "art")]
ROWS = STAGE_ROWS + ["art-reduced", "native-reduced", "native-standard"]


def run_row(row: str, serve, images, labels, norm: str, eps: float, pass_seconds=None) -> dict:
    """One row: robust accuracy and seconds (also per 1,000 images) of the attack ``row`` names, with its stages
    and settings; with ``pass_seconds`` (:func:`per_image_seconds`) also ``classifier_calls`` and
    ``classifier_seconds``, the estimated floor."""
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
    out = {"row": row, "robust_accuracy": result["robust_accuracy"], "seconds": round(seconds, 1),
           "seconds_per_1000": round(seconds * 1000 / len(labels), 1),
           "stages": result["stages"], "settings": result["settings"]}
    if pass_seconds is not None:
        calls = classifier_calls(result["stages"], result["settings"], len(labels), pass_seconds["num_classes"])
        out["classifier_calls"] = calls
        out["classifier_seconds"] = round(calls["gradients"] * pass_seconds["gradient"]
                                          + calls["forwards"] * pass_seconds["forward"], 1)
    return out


def classifier_calls(stages: list[dict], settings: dict, num_examples: int, num_classes: int) -> dict:
    """Image passes through the classifier that the run's stages make: ``gradients`` (forward and backward, the
    input gradient) and ``forwards``, counting for every image a stage attacks (those every earlier stage left
    correctly classified, read from ``stages``) every iteration, target and query, as if no image were fooled on the
    way (so a little more than a run makes; after the first stage few are). The clean and keep-the-successes checks
    (one forward per image and stage) are left out."""
    targets = min(settings.get("targets", 0), num_classes - 1)
    per_image = {  # (gradients, forwards) per attacked image, from the algorithms (tfadv.autoattack's modules)
        "apgd-ce": (settings["apgd_restarts"] * (settings["apgd_iter"] + 1), 0),  # the start, then one per iteration
        "apgd-t": (targets * (settings["apgd_iter"] + 1), 0),
        "fab-t": (targets * settings.get("fab_iter", 0), targets * settings.get("fab_iter", 0)),  # margin, then predict
        "square": (0, settings["square_queries"] + 1),  # the start, then one per query
    }
    gradients = forwards = 0
    for before, stage in zip(stages, stages[1:]):
        attacked = round(before["robust_accuracy"] * num_examples)
        g, f = per_image[stage["stage"]]
        gradients, forwards = gradients + attacked * g, forwards + attacked * f
    return {"gradients": gradients, "forwards": forwards}


def per_image_seconds(serve, images, labels, repeats: int = 10) -> dict:
    """Seconds per image of one forward pass (``forward``) and one input gradient of the cross-entropy
    (``gradient``) of ``serve`` on all ``images`` at once, compiled, after a warm-up; and ``num_classes``."""
    import numpy as np
    import tensorflow as tf

    from tfadv.timing import timed_calls

    x, y = tf.constant(np.asarray(images, np.float32)), tf.constant(np.asarray(labels, np.int32))

    @tf.function
    def forward(x):
        return tf.argmax(serve(x), -1)

    @tf.function
    def gradient(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tf.cast(serve(x), tf.float32)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        return tape.gradient(loss, x)

    forward_seconds, _ = timed_calls(lambda: forward(x).numpy(), [()] * repeats, warmup=2)
    gradient_seconds, _ = timed_calls(lambda: gradient(x, y).numpy(), [()] * repeats, warmup=2)
    return {"forward": forward_seconds / len(labels), "gradient": gradient_seconds / len(labels),
            "batch": len(labels), "num_classes": int(serve(x[:1]).shape[-1])}


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table: robust accuracy, seconds, seconds per 1,000 images, and the classifier's own
    seconds for the row's calls where measured."""
    return markdown.table(("row", "robust accuracy", "seconds", "seconds per 1,000 images",
                           "classifier's own passes, seconds"),
                          [(r["row"], f"{r['robust_accuracy']:.4f}", r["seconds"], r["seconds_per_1000"],
                            r.get("classifier_seconds", "-")) for r in rows])
