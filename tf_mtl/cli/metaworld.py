r"""Multi-task SAC on Meta-World, measuring the critic's transference (001 §5.1.3).

Usage:
    tf-mtl-metaworld --config=FILE.py[:runlocal] --workdir=DIR [--config.<field>=value ...]

Example (a couple of minutes on a laptop CPU with ':runlocal'; needs pip install -e ".[rl]"):
    python -m launch.metaworld --config=configs/metaworld_sac.py:runlocal --workdir=/tmp/mw
    python -m launch.metaworld --config=configs/metaworld_sac.py --workdir=/tmp/mw \
        --config.transference.every=20

Prints one line per iteration (returns, success rates, critic loss, transference self/cross);
writes DIR/progress.json, the affinity files and heatmap (normalized by self-transference),
DIR/groups.json, DIR/results.json and DIR/tensorboard. Run the same command again after a
kill: it continues from the last completed iteration.
"""

from absl import flags
from ml_collections import config_flags

from tf_mtl import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The experiment: a get_config() file, FILE.py[:runlocal] "
    "(configs/metaworld_sac.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the run's files (made if "
                               "missing; a killed run there is continued).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    from tf_mtl.rl import run as rl_run
    config = _CONFIG.value
    with cli.checks():   # Before anything is built or run.
        try:
            rl_run.check_config(config)
        except ImportError as e:   # Meta-World missing: the message names the extra.
            raise cli.Refusal(str(e)) from e
        cli.writable_dir(_WORKDIR.value)
    results = rl_run.run(config, _WORKDIR.value)
    print("wrote:", _WORKDIR.value)
    print("groups:", results["groups"])


def run():
    """Console-script entry point."""
    cli.run_command(main)
