"""One pass of an attack over a dataset, kept per example: the main job's (tools/attack.py) measurements.

    sweep = Sweep(lambda x, y: generator(x), classifier, dataset, keep_first=8)
    sweep.summary(), sweep.images_per_s
    sweep_figure(sweep, class_names, "title", n=8, failed=True)
"""

import time

import numpy as np

from tfadv import figures


class Sweep:
    """One pass of an attack over a dataset: per-example predictions and norms, a few kept images, images/s."""

    def __init__(self, attack, classifier, dataset, keep_first: int, keep_failed: int = 0):
        labels, clean, adv, l2, linf, kept, failed = [], [], [], [], [], [], []
        seconds, timed, offset, low, high = 0.0, 0, 0, np.inf, -np.inf
        for images, y in dataset:
            start = time.perf_counter()
            x_hat = np.asarray(attack(images, y))
            if offset:  # the first batch pays for tracing
                seconds, timed = seconds + time.perf_counter() - start, timed + len(y)
            x = images.numpy()
            y = y.numpy()
            clean_pred = np.argmax(classifier(images), -1)
            adv_pred = np.argmax(classifier(x_hat), -1)
            delta = (x_hat - x).reshape(len(y), -1)
            labels.append(y), clean.append(clean_pred), adv.append(adv_pred)
            l2.append(np.sqrt(np.sum(delta ** 2, 1))), linf.append(np.max(np.abs(delta), 1))
            low, high = min(low, float(x_hat.min())), max(high, float(x_hat.max()))
            if offset < keep_first:
                kept.append((x[: keep_first - offset], x_hat[: keep_first - offset]))
            for i in np.flatnonzero(adv_pred == y)[: max(0, keep_failed - len(failed))]:
                failed.append((offset + i, x[i], x_hat[i]))
            offset += len(y)
        if not offset:
            raise ValueError("The attack sweep got an empty dataset.")
        self.labels, self.clean, self.adv = (np.concatenate(a) for a in (labels, clean, adv))
        self.l2, self.linf = np.concatenate(l2), np.concatenate(linf)
        self.x = np.concatenate([k[0] for k in kept]) if kept else None
        self.x_hat = np.concatenate([k[1] for k in kept]) if kept else None
        self.failed = failed
        self.images_per_s = timed / seconds if seconds else None
        self.x_hat_range = (low, high)

    def summary(self, n: int | None = None) -> dict:
        """Adversarial accuracy, fooling rate and norms over the first ``n`` examples (all by default)."""
        s = slice(0, n)
        return {"images": len(self.labels[s]), "clean_accuracy": float(np.mean(self.clean[s] == self.labels[s])),
                "adv_accuracy": float(np.mean(self.adv[s] == self.labels[s])),
                "fooling_rate": float(np.mean(self.adv[s] != self.clean[s])),
                "l2_mean": float(np.mean(self.l2[s])), "l2_max": float(np.max(self.l2[s])),
                "linf_mean": float(np.mean(self.linf[s])), "linf_max": float(np.max(self.linf[s]))}


def speed(images_per_s) -> str:
    """images/s as a table cell: one decimal below 100, none above; empty when not measured (one batch only)."""
    if images_per_s is None:
        return ""
    return f"{images_per_s:.1f}" if images_per_s < 100 else f"{images_per_s:.0f}"


def sweep_figure(sweep: Sweep, names, title: str, n: int, failed: bool, target_class: int | None = None):
    """x | delta | x_hat rows for the first ``n`` images (plus failed ones from anywhere, if asked)."""
    idx = list(range(min(n, len(sweep.x))))
    x, x_hat = sweep.x[: len(idx)], sweep.x_hat[: len(idx)]
    extra = [f for f in sweep.failed if f[0] >= len(idx)] if failed else []
    if extra:
        idx += [f[0] for f in extra]
        x = np.concatenate([x, np.stack([f[1] for f in extra])])
        x_hat = np.concatenate([x_hat, np.stack([f[2] for f in extra])])
    idx = np.array(idx)
    return figures.attack_figure(x, x_hat, sweep.labels[idx], sweep.clean[idx], sweep.adv[idx], names, title=title,
                                 target_class=target_class, indices=idx)
