"""Run a named benchmark and print its table.

Usage:
    tf-mtl-benchmark --bench=NAME [--steps=N --repeats=N ...]

Examples:
    tf-mtl-benchmark --bench=transference [--steps=5 --repeats=3 --reference --xla --nomemory]
    tf-mtl-benchmark --bench=breakdown [--profile_dir=DIR]
    tf-mtl-benchmark --bench=grouping [--time_limit=120]
    tf-mtl-benchmark --bench=checkpoint      # epoch checkpoint cost, % of a quickstart epoch
    tf-mtl-benchmark --bench=distribute [--steps=5 --repeats=3]   # 1 vs 2 replicas
    tf-mtl-benchmark --bench=updates [--cases=lenet]   # every update rule's step time
    tf-mtl-benchmark --bench=dense [--cases=plain,itmtl --steps=1 --repeats=2]  # SegNet-MTAN
    python -m launch.benchmark ...    # the same, from a checkout
"""

from absl import flags

from tf_mtl import benchmarks, cli
from tf_mtl.benchmarks.transference import REFERENCE_SCRIPT

_BENCH = flags.DEFINE_enum("bench", None, sorted(benchmarks.BENCHMARKS), "Which benchmark.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per repeat.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats (the median is reported).",
                                lower_bound=1)
_PER_TASK = flags.DEFINE_enum("per_task_gradients", "loop", ["loop", "jacobian"],
                              "How per-task gradients are formed.")
_TIME_LIMIT = flags.DEFINE_float("time_limit", 120.0, "Grouping: seconds per search.",
                                 lower_bound=0)
_MEMORY = flags.DEFINE_bool("memory", True, "Transference: also the ResNet-18 order=-1 "
                            "peak memory rows (a few minutes).")
_XLA = flags.DEFINE_bool("xla", False, "Transference: also rows under jit_compile=True.")
_REFERENCE = flags.DEFINE_bool("reference", False, "Transference: also the TAG reference "
                               "step's ratio, measured in the same run (needs tf_keras).")
_REFERENCE_SCRIPT = flags.DEFINE_string("reference_script", REFERENCE_SCRIPT,
                                        "The reference step script.")
_PROFILE_DIR = flags.DEFINE_string("profile_dir", None, "Breakdown: also write a "
                                   "TensorFlow profiler trace of the step here.")
_CASES = flags.DEFINE_list("cases", None, "Updates: the cases to run (resnet, lenet; "
                           "default both). Dense: plain, itmtl, transference (default all; "
                           "plain always runs).")
_SPLITS = flags.DEFINE_list("splits", None, "Selection: the budgets per size (default 4; "
                            "2,3,4 for the full grid).")
flags.mark_flag_as_required("bench")


def main(argv):
    del argv
    with cli.checks():
        if _REFERENCE.value and _BENCH.value == "transference":
            cli.existing_file(_REFERENCE_SCRIPT.value, "reference_script",
                              "the TAG reference step script")
        if _PROFILE_DIR.value:
            cli.writable_dir(_PROFILE_DIR.value, "profile_dir")
    columns, rows = benchmarks.run(
        _BENCH.value,
        steps=_STEPS.value, repeats=_REPEATS.value, per_task_gradients=_PER_TASK.value,
        time_limit=_TIME_LIMIT.value, memory=_MEMORY.value, xla=_XLA.value,
        reference=_REFERENCE.value, reference_script=_REFERENCE_SCRIPT.value,
        profile_dir=_PROFILE_DIR.value,
        **({"cases": tuple(_CASES.value)} if _CASES.value else {}),
        **({"splits": tuple(_SPLITS.value)} if _SPLITS.value else {}))
    print(benchmarks.format_table(columns, rows))


def run():
    """Console-script entry point."""
    cli.run_command(main)
