"""Timed comparisons behind ``python -m launch.benchmark --bench=NAME``.

Timings live here, never in tests. Each benchmark builds its models in one
process, warms each compiled step up (tracing excluded), then times ``steps``
steps ``repeats`` times and reports medians. ``run(name, **options)`` returns
``(columns, rows)``; ``format_table`` prints them as Markdown. Benchmark
modules are imported only when their benchmark runs.
"""

import importlib

# name -> (module, function): the module is imported when the benchmark runs.
BENCHMARKS = {
    "breakdown": ("transference", "breakdown"),
    "checkpoint": ("checkpoint", "checkpoint_benchmark"),
    "dense": ("dense", "dense_benchmark"),
    "distribute": ("distribute", "distribute_benchmark"),
    "grouping": ("grouping", "grouping"),
    "interference": ("interference", "interference_benchmark"),
    "partition": ("partition", "partition"),
    "rl": ("rl", "rl_benchmark"),
    "selection": ("selection", "selection_benchmark"),
    "taskonomy": ("taskonomy", "taskonomy_benchmark"),
    "transference": ("transference", "transference"),
    "updates": ("updates", "updates_benchmark"),
}


def run(name, **options):
    """Runs benchmark ``name`` with ``options``; returns ``(columns, rows)``."""
    if name not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark; known: {sorted(BENCHMARKS)}. Received: name={name!r}")
    module, function = BENCHMARKS[name]
    return getattr(importlib.import_module(f"tf_mtl.benchmarks.{module}"), function)(**options)


def format_table(columns, rows):
    """A Markdown table of ``rows`` under ``columns``."""
    widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
    return "\n".join("| " + " | ".join(str(v).ljust(w) for v, w in zip(row, widths)) + " |"
                     for row in [columns, ["-" * w for w in widths], *rows])
