"""Tables, paired t-tests and figures of ``000``'s protocol from its per-model records.

Files written by ``write(workdir, records, similarity, weightings)``:

* ``records.csv`` — one row per (MDL model, domain): the three metrics and both
  accuracies of each trial;
* ``results.csv`` — mean ± standard error over trials per (weighting, width,
  pairing, domain); ``summary.csv`` — per (weighting, width) over every
  network, pairing, domain and trial (``000`` Fig. 2);
* ``ttests.csv`` — paired t-tests between each two weightings per width and
  metric, pairing the values of the same (pairing, domain, trial) (``000`` §4.1);
* ``similarity.csv`` — CKA per (width, pairing), mean ± standard error over trials;
  ``similarity_differences.csv`` — per (weighting, width, domain), the metrics of
  the domain's most similar pairing minus its least similar one (``000`` Fig. 6);
* ``results.md`` — all of these tables in Markdown;
* figures (PNG, needs matplotlib): ``fig2_metrics_vs_params.png``,
  ``fig3_<domain>.png``, ``fig4_transfer_vs_interference.png`` (best-fit line,
  slope and R² per weighting), ``fig6_similarity_differences.png``.

Values undefined for a model (``tf_mtl.metrics.UNDEFINED``) are left out of
means; each mean says how many values it has (``n``).
"""

import csv
import itertools
import math
import os


from tf_mtl.interference import stats

METRICS = ("perf_gain", "interference", "transfer")


def _group(rows, keys):
    out = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def _aggregate(rows, keys, values):
    table = []
    for key, group in _group(rows, keys).items():
        row = dict(zip(keys, key))
        for v in values:
            row[v], row[v + "_se"], row[v + "_n"] = stats.mean_se([g[v] for g in group])
        table.append(row)
    return table


def ttests(records, weightings):
    """Paired t-tests between each two weightings, per width and metric."""
    out = []
    for width in sorted({r["width"] for r in records}):
        mine = [r for r in records if r["width"] == width]
        for metric in METRICS:
            by = {w: {(r["pairing"], r["domain"], r["trial"]): r[metric]
                      for r in mine if r["weighting"] == w} for w in weightings}
            for a, b in itertools.combinations(weightings, 2):
                keys = sorted(set(by[a]) & set(by[b]))
                t = stats.paired_ttest([by[a][k] for k in keys], [by[b][k] for k in keys])
                out.append({"width": width, "metric": metric, "a": a, "b": b, **t})
    return out


def similarity_differences(records, similarity):
    """Per (weighting, width, domain): the metrics with the domain's most similar pairing
    minus those with its least similar one (by mean CKA at that width); domains in fewer
    than 2 pairings are skipped."""
    cka = {(r["width"], r["pairing"]): r["cka"] for r in _aggregate(
        similarity, ("width", "pairing"), ("cka",))}
    means = {(r["weighting"], r["width"], r["pairing"], r["domain"]): r for r in _aggregate(
        records, ("weighting", "width", "params", "pairing", "domain"), METRICS)}
    out = []
    for (weighting, width, _, domain), r in sorted(means.items()):
        pairings = sorted({p for (w, wd, p, d) in means if (w, wd, d) == (weighting, width,
                                                                          domain)},
                          key=lambda p: cka.get((width, p), -math.inf))
        if len(pairings) < 2 or r["pairing"] != pairings[-1]:
            continue
        less = means[(weighting, width, pairings[0], domain)]
        out.append({"weighting": weighting, "width": width, "params": r["params"],
                    "domain": domain, "more_similar": pairings[-1], "less_similar": pairings[0],
                    **{f"{m}_difference": r[m] - less[m] for m in METRICS}})
    return out


def _write_csv(path, rows):
    columns = list(rows[0]) if rows else []
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _cell(row, key):
    v = row[key]
    if key + "_se" in row:
        se = row[key + "_se"]
        return f"{v:.2f} ± {se:.2f}" if math.isfinite(se) else f"{v:.2f}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")   # Pairings join domains with '|'.


def markdown(rows, columns):
    """A Markdown table of ``rows`` (mean ± se where the row has ``<column>_se``)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write(workdir, records, similarity, weightings, figures=True):
    """Writes every table and (``figures``) figure (module doc); returns their paths."""
    os.makedirs(workdir, exist_ok=True)
    path = lambda name: os.path.join(workdir, name)
    results = _aggregate(records, ("weighting", "width", "params", "pairing", "domain"),
                         METRICS + ("single_accuracy", "multi_accuracy"))
    summary = _aggregate(records, ("weighting", "width", "params"), METRICS)
    sim = _aggregate(similarity, ("width", "params", "pairing"), ("cka",))
    tests = ttests(records, weightings)
    diffs = similarity_differences(records, similarity)
    files = [_write_csv(path("records.csv"), records), _write_csv(path("results.csv"), results),
             _write_csv(path("summary.csv"), summary), _write_csv(path("ttests.csv"), tests),
             _write_csv(path("similarity.csv"), sim),
             _write_csv(path("similarity_differences.csv"), diffs)]
    keys = ["weighting", "width", "params"]
    sections = [
        ("Per pairing and domain (mean ± standard error over trials)",
         markdown(results, keys + ["pairing", "domain", *METRICS, "single_accuracy",
                                   "multi_accuracy"])),
        ("Per weighting and width, over every pairing, domain and trial (000 Fig. 2)",
         markdown(summary, keys + list(METRICS))),
        ("Paired t-tests between weightings (pairs: same pairing, domain, trial)",
         markdown(tests, ["width", "metric", "a", "b", "n", "mean_difference", "t", "p"])),
        ("Task similarity: linear CKA of the single-domain models (mean ± standard error)",
         markdown(sim, ["width", "params", "pairing", "cka"])),
        ("More similar minus less similar pairing (000 Fig. 6)",
         markdown(diffs, keys + ["domain", "more_similar", "less_similar"]
                  + [f"{m}_difference" for m in METRICS])),
    ]
    with open(path("results.md"), "w") as f:
        f.write("\n\n".join(f"## {title}\n\n{table}" for title, table in sections) + "\n")
    files.append(path("results.md"))
    if figures:
        from tf_mtl.interference.figures import write as write_figures  # matplotlib: optional
        files += write_figures(workdir, records, summary, results, diffs, weightings)
    return files
