"""Run a named benchmark and print its table.

    python -m launch.benchmark --bench=transference [--steps=20 --repeats=3]
"""

from absl import app, flags

from tf_mtl import benchmark

_BENCH = flags.DEFINE_enum("bench", None, sorted(benchmark.BENCHMARKS), "Which benchmark.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats (the median is reported).")
_PER_TASK = flags.DEFINE_enum("per_task_gradients", "loop", ["loop", "jacobian"],
                              "How per-task gradients are formed.")
flags.mark_flag_as_required("bench")


def main(argv):
    del argv
    rows = benchmark.BENCHMARKS[_BENCH.value](
        steps=_STEPS.value, repeats=_REPEATS.value, per_task_gradients=_PER_TASK.value)
    print(f"| {'case':34s} | ms/step | x plain |")
    print(f"|{'-' * 36}|---------|---------|")
    for name, seconds, ratio in rows:
        print(f"| {name:34s} | {seconds * 1e3:7.1f} | {ratio:7.2f} |")


if __name__ == "__main__":
    app.run(main)
