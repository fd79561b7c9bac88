"""Run a named benchmark and print its table.

    tf-mtl-benchmark --bench=transference [--steps=20 --repeats=3]
    tf-mtl-benchmark --bench=grouping [--time_limit=120]
    python -m launch.benchmark ...    # the same, from a checkout
"""

from absl import app, flags

from tf_mtl import benchmark

_BENCH = flags.DEFINE_enum("bench", None, sorted(benchmark.BENCHMARKS), "Which benchmark.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats (the median is reported).")
_PER_TASK = flags.DEFINE_enum("per_task_gradients", "loop", ["loop", "jacobian"],
                              "How per-task gradients are formed.")
_TIME_LIMIT = flags.DEFINE_float("time_limit", 120.0, "Grouping: seconds per search.")
_MEMORY = flags.DEFINE_bool("memory", True, "Transference: also the ResNet-18 order=-1 "
                            "peak memory rows (a few minutes).")
flags.mark_flag_as_required("bench")


def main(argv):
    del argv
    columns, rows = benchmark.BENCHMARKS[_BENCH.value](
        steps=_STEPS.value, repeats=_REPEATS.value, per_task_gradients=_PER_TASK.value,
        time_limit=_TIME_LIMIT.value, memory=_MEMORY.value)
    print(benchmark.format_table(columns, rows))


def run():
    """Console-script entry point."""
    app.run(main)
