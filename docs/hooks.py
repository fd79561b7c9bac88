"""MkDocs hook: draws the figures the pages show with tf_mtl's own plotting code.

No PNG is committed. At build time ``on_files`` writes, into a temporary folder, and adds
to the site as ``figures/<name>.png``:

* ``affinity.png`` and ``affinity_normalized.png``: ``tf_mtl.plots.plot_affinity`` on a
  planted 6-task affinity matrix (groups {t0, t3}, {t1, t4}, {t2, t5}, as
  ``tf_mtl.data.synthetic(num_tasks=6, num_groups=3)`` plants them);
* ``fig2_metrics_vs_params.png``, ``fig3_a.png``, ``fig4_transfer_vs_interference.png``,
  ``fig6_similarity_differences.png``: ``tf_mtl.interference.report.write`` (which calls
  ``tf_mtl.interference.figures``) on records computed by ``tf_mtl.metrics``'s
  ``interference_transfer`` and ``linear_cka`` from planted, seeded correctness arrays and
  features.

The inputs are planted (seeded numpy draws), not measurements: the figures show what the
library draws and how to read it, not results.
"""

import itertools
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from mkdocs.structure.files import File  # noqa: E402

TASKS = [f"t{i}" for i in range(6)]
PLANTED_GROUPS = [("t0", "t3"), ("t1", "t4"), ("t2", "t5")]
DOMAINS = ("a", "b", "c")
WEIGHTINGS = ["uniform", "uw", "cov"]
# Encoder widths and their parameter counts (000's ResNet-32 at 0.25x / 0.5x / 1x).
WIDTHS = {0.25: 29_000, 0.5: 116_000, 1.0: 463_000}
TRIALS = 3
SAMPLES = 2_000
FIGURES = ("affinity.png", "affinity_normalized.png", "fig2_metrics_vs_params.png",
           "fig3_a.png", "fig4_transfer_vs_interference.png",
           "fig6_similarity_differences.png")


def planted_affinity():
    """``scores[source][target]``: a task helps itself (0.030) and its group partner (0.018),
    hurts the other groups (-0.006), with a small deterministic spread; the all-tasks source
    helps every task a little."""
    group_of = {t: g for g, group in enumerate(PLANTED_GROUPS) for t in group}
    scores = {}
    for i, s in enumerate(TASKS):
        scores[s] = {}
        for j, t in enumerate(TASKS):
            base = 0.030 if s == t else 0.018 if group_of[s] == group_of[t] else -0.006
            scores[s][t] = round(base + 0.001 * ((3 * i + 5 * j) % 4 - 1.5), 5)
    scores["|".join(TASKS)] = {t: round(0.008 + 0.001 * (j % 3), 5)
                               for j, t in enumerate(TASKS)}
    return scores


def planted_protocol():
    """``(records, similarity)`` in the form ``tf_mtl.interference.protocol.run`` builds them,
    from planted correctness arrays (wider encoders: more single-task accuracy, less
    interference; the pairing a|b shares the most, hence transfers the most) and planted
    features (a|b the most similar pair)."""
    import numpy as np

    from tf_mtl import metrics
    rng = np.random.default_rng(0)
    share = {"a|b": 0.8, "a|c": 0.5, "b|c": 0.3}
    records, similarity = [], []
    for width, params in WIDTHS.items():
        grow = np.log2(width / 0.25) / 2.0                      # 0, 0.5, 1
        for trial in range(TRIALS):
            single = {d: rng.random(SAMPLES) < 0.45 + 0.2 * grow + 0.05 * k
                      for k, d in enumerate(DOMAINS)}
            for pairing, (w_index, weighting) in itertools.product(
                    ("a|b", "a|c", "b|c"), enumerate(WEIGHTINGS)):
                for d in pairing.split("|"):
                    lose = 0.20 - 0.08 * grow - 0.02 * w_index + 0.05 * (1 - share[pairing])
                    gain = 0.05 + 0.15 * share[pairing] + 0.03 * grow
                    draw = rng.random(SAMPLES)
                    multi = np.where(single[d], draw >= lose, draw < gain)
                    r = metrics.interference_transfer(single[d], multi)
                    records.append({
                        "weighting": weighting, "width": width, "params": params,
                        "pairing": pairing, "domain": d, "trial": trial,
                        "perf_gain": r["perf_gain"], "interference": r["interference"],
                        "transfer": r["transfer"],
                        "single_accuracy": 100.0 * float(single[d].mean()),
                        "multi_accuracy": 100.0 * float(multi.mean())})
            common = rng.normal(size=(200, 16))
            for pairing, s in share.items():
                a = common + rng.normal(size=(200, 16))
                b = s * common + (1 - s) * rng.normal(size=(200, 16))
                similarity.append({"width": width, "params": params, "pairing": pairing,
                                   "trial": trial, "cka": metrics.linear_cka(a, b)})
    return records, similarity


def draw(folder):
    """Writes every figure of ``FIGURES`` into ``folder``; returns their paths."""
    from tf_mtl import plots
    from tf_mtl.interference import report
    scores = planted_affinity()
    plots.plot_affinity(scores, TASKS, os.path.join(folder, "affinity.png"),
                        title="planted affinity (6 tasks, 3 groups)")
    plots.plot_affinity(scores, TASKS, os.path.join(folder, "affinity_normalized.png"),
                        normalize=True)
    records, similarity = planted_protocol()
    report.write(folder, records, similarity, WEIGHTINGS, figures=True)
    return [os.path.join(folder, name) for name in FIGURES]


def on_files(files, config):
    with tempfile.TemporaryDirectory() as folder:
        for path in draw(folder):
            with open(path, "rb") as f:
                files.append(File.generated(config, "figures/" + os.path.basename(path),
                                            content=f.read()))
    return files
