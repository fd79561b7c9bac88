r"""``002``'s Taskonomy curves recomputed from its authors' published losses.

Usage:
    tf-mtl-standley [--settings=1,2,3,4] [--random_trials=20000] [--serve_on=test|validation] \
        [--results_dir=DIR]

Example (no training, no data: the results files ship with the package):
    tf-mtl-standley --settings=1
    python -m launch.standley --settings=1,4 --random_trials=0    # the same, from a checkout

Prints, per setting, the total test loss of the optimal (validation), ESA and HOA selections and
of random groupings at budgets 1 to 5 (steps of 0.5), each under the row ``002`` plots
(``tf_mtl.grouping.standley``; docs/taskonomy.md explains every difference).
"""

import os

from absl import flags

from tf_mtl import cli

_SETTINGS = flags.DEFINE_list("settings", ["1", "2", "3", "4"],
                              "Which of 002's settings (1-4; 1 is 002 Table 4).")
_TRIALS = flags.DEFINE_integer("random_trials", 20000, "Random groupings drawn per budget "
                               "(0: no random row).", lower_bound=0)
_SERVE_ON = flags.DEFINE_enum("serve_on", "test", ["test", "validation"],
                              "How a task is served: 'test' (002's rule: the chosen network "
                              "with its lowest test loss) or 'validation' (the one chosen for it).")
_RESULTS_DIR = flags.DEFINE_string("results_dir", None, "A directory holding 002's "
                                   "results*.txt files (default: the packaged copies).")


def main(argv):
    del argv
    from tf_mtl.grouping import standley
    with cli.checks():   # Before any file is read.
        settings = []
        for value in _SETTINGS.value:
            if not value.strip().isdigit() or int(value) not in standley.STANDLEY_SETTINGS:
                raise cli.Refusal(f"--settings: each must be one of "
                                  f"{sorted(standley.STANDLEY_SETTINGS)}. "
                                  f"Received: --settings={','.join(_SETTINGS.value)}")
            settings.append(int(value))
        if _RESULTS_DIR.value is not None:
            for setting in settings:
                for name in standley.STANDLEY_SETTINGS[setting]:
                    cli.existing_file(os.path.join(_RESULTS_DIR.value, name), "results_dir",
                                      f"a directory holding 002's {name}")
    for setting in settings:
        curves = standley.standley_curves(setting, random_trials=_TRIALS.value,
                                          serve_on=_SERVE_ON.value, directory=_RESULTS_DIR.value)
        published = standley.PUBLISHED.get(setting) if _SERVE_ON.value == "test" else None
        print(f"setting {setting}")
        print(standley.format_curves(curves, published=published))


def run():
    """Console-script entry point."""
    cli.run_command(main)
