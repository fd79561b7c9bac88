"""The figures of ``000``'s protocol (needs matplotlib: ``pip install tf_mtl[plot]``).

* ``fig2_metrics_vs_params.png`` — PerfGain, Interference, Transfer averaged
  over all networks of a width, against log10 #parameters, one line per
  weighting, standard-error bars (``000`` Fig. 2);
* ``fig3_<domain>.png`` — the three metrics on one domain, one line per
  pairing, one row per weighting (``000`` Fig. 3);
* ``fig4_transfer_vs_interference.png`` — transfer against interference, one
  dot per (MDL model, domain, width) averaged over trials, with the
  least-squares line, its slope ``m`` and ``R²``, one panel per weighting
  (``000`` Fig. 4 / S1);
* ``fig6_similarity_differences.png`` — per weighting, the transfer of the
  more similar pairing minus the less similar one per domain, and the absolute
  interference difference averaged over domains (``000`` Fig. 6).
"""

import math
import os

import numpy as np

from tf_mtl.interference import stats

LABELS = {"perf_gain": "PerfGain (%)", "interference": "Interference (%)",
          "transfer": "Transfer (%)"}


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("The protocol's figures need matplotlib: pip install "
                          "'tf_mtl[plot]'") from e
    return plt


def _line(ax, rows, metric, label):
    rows = sorted(rows, key=lambda r: r["params"])
    x = [math.log10(r["params"]) for r in rows]
    ax.errorbar(x, [r[metric] for r in rows],
                yerr=[0.0 if not math.isfinite(r[metric + "_se"]) else r[metric + "_se"]
                      for r in rows], marker="o", capsize=3, label=label)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def _fig2(plt, path, summary, weightings):
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, metric in zip(axes, LABELS):
        for w in weightings:
            _line(ax, [r for r in summary if r["weighting"] == w], metric, w)
        ax.set_xlabel("log10 #parameters")
        ax.set_ylabel(LABELS[metric])
    axes[0].legend()
    return _save(fig, path)


def _fig3(plt, path, results, domain, weightings):
    fig, axes = plt.subplots(len(weightings), 3, figsize=(12, 3.2 * len(weightings)),
                             squeeze=False)
    for row, w in zip(axes, weightings):
        mine = [r for r in results if r["domain"] == domain and r["weighting"] == w]
        for ax, metric in zip(row, LABELS):
            for pairing in sorted({r["pairing"] for r in mine}):
                partner = "+".join(p for p in pairing.split("|") if p != domain)
                _line(ax, [r for r in mine if r["pairing"] == pairing], metric, f"with {partner}")
            ax.set_title(f"{domain}, {w}")
            ax.set_xlabel("log10 #parameters")
            ax.set_ylabel(LABELS[metric])
        row[0].legend()
    return _save(fig, path)


def _fig4(plt, path, results, weightings):
    fig, axes = plt.subplots(1, len(weightings), figsize=(4.2 * len(weightings), 3.8),
                             squeeze=False)
    for ax, w in zip(axes[0], weightings):
        mine = [r for r in results if r["weighting"] == w]
        x = np.array([r["interference"] for r in mine])
        y = np.array([r["transfer"] for r in mine])
        for domain in sorted({r["domain"] for r in mine}):
            keep = [r["domain"] == domain for r in mine]
            ax.scatter(x[keep], y[keep], label=domain, s=18)
        slope, intercept, r2 = stats.fit_line(x, y)
        if math.isfinite(slope):
            grid = np.linspace(np.nanmin(x), np.nanmax(x), 10)
            ax.plot(grid, slope * grid + intercept, "k--", lw=1)
            ax.set_title(f"{w}: m = {slope:.2f}, R² = {r2:.2f}")
        else:
            ax.set_title(f"{w}: too few points for a line")
        ax.set_xlabel(LABELS["interference"])
        ax.set_ylabel(LABELS["transfer"])
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def _fig6(plt, path, diffs, weightings):
    fig, axes = plt.subplots(1, len(weightings) + 1, figsize=(4 * (len(weightings) + 1), 3.5),
                             squeeze=False)
    for ax, w in zip(axes[0], weightings):
        mine = [r for r in diffs if r["weighting"] == w]
        for domain in sorted({r["domain"] for r in mine}):
            rows = sorted([r for r in mine if r["domain"] == domain], key=lambda r: r["params"])
            ax.plot([math.log10(r["params"]) for r in rows],
                    [r["transfer_difference"] for r in rows], marker="o", label=domain)
        ax.axhline(0.0, color="gray", lw=0.8)
        ax.set_title(f"transfer difference, {w}")
        ax.set_xlabel("log10 #parameters")
        ax.set_ylabel("more - less similar pairing (%)")
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    for w in weightings:
        mine = [r for r in diffs if r["weighting"] == w]
        params = sorted({r["params"] for r in mine})
        means = [stats.mean_se([abs(r["interference_difference"]) for r in mine
                                if r["params"] == p]) for p in params]
        ax.errorbar([math.log10(p) for p in params], [m[0] for m in means],
                    yerr=[0.0 if not math.isfinite(m[1]) else m[1] for m in means],
                    marker="o", capsize=3, label=w)
    ax.set_title("|interference difference|, mean over domains")
    ax.set_xlabel("log10 #parameters")
    ax.set_ylabel("|difference| (%)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def write(workdir, records, summary, results, diffs, weightings):
    """Writes the four kinds of figure; returns their paths."""
    plt = _pyplot()
    path = lambda name: os.path.join(workdir, name)
    files = [_fig2(plt, path("fig2_metrics_vs_params.png"), summary, weightings)]
    for domain in sorted({r["domain"] for r in records}):
        files.append(_fig3(plt, path(f"fig3_{domain}.png"), results, domain, weightings))
    files.append(_fig4(plt, path("fig4_transfer_vs_interference.png"), results, weightings))
    files.append(_fig6(plt, path("fig6_similarity_differences.png"), diffs, weightings))
    return files
