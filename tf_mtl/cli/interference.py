"""Run 000's interference / transfer protocol from a config file.

Usage:
    tf-mtl-interference --config=FILE.py[:arg] --workdir=DIR [--config.<field>=value ...]

Example (three tiny synthetic domains, a few minutes on a laptop CPU):
    tf-mtl-interference --config=configs/interference_mdl.py:runlocal --workdir=/tmp/mdl
    python -m launch.interference ...    # the same, from a checkout
"""

from absl import flags
from ml_collections import config_flags

from tf_mtl import cli
from tf_mtl.experiments import config_checks
from tf_mtl.interference import protocol

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The protocol: a get_config() file, FILE.py[:arg] "
    "(configs/interference_mdl.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for models, tables and figures; "
                               "models already saved there are reused.")
flags.mark_flags_as_required(["config", "workdir"])


def check_protocol(config):
    """What ``protocol.run`` refuses before it loads any domain, checked here, before the
    workdir is made: 2 or more domains of known kinds, known weightings and pairings, an
    encoder it builds."""
    domains = sorted(config.domains)
    if len(domains) < 2:
        raise ValueError(f"The protocol needs at least 2 domains. Received: config.domains="
                         f"{domains}")
    for name in domains:
        kind = config.domains[name].get("kind")
        if kind not in protocol.DOMAIN_KINDS:
            raise ValueError(f"Unknown domain kind. Received: config.domains.{name}.kind="
                             f"{kind!r}; known: {protocol.DOMAIN_KINDS}")
    unknown = sorted(set(config.weightings) - set(protocol.WEIGHTINGS))
    if unknown or not config.weightings:
        raise ValueError(f"`config.weightings` must list names of "
                         f"{sorted(protocol.WEIGHTINGS)}. Received: {list(config.weightings)}")
    protocol.pairings_of(config, domains)
    encoder = config.model.get("encoder")
    if encoder not in ("resnet_cifar", "mlp"):
        raise ValueError("`config.model.encoder` must be 'resnet_cifar' or 'mlp'. "
                         f"Received: {encoder!r}")


def main(argv):
    del argv
    with cli.checks():
        config_checks.check_config(_CONFIG.value)
        check_protocol(_CONFIG.value)
        cli.writable_dir(_WORKDIR.value)
    result = protocol.run(_CONFIG.value, _WORKDIR.value)
    print(f"trained {len(result['trained'])} models, reused {len(result['loaded'])}; wrote:")
    for path in result["files"]:
        print("  " + path)


def run():
    """Console-script entry point."""
    cli.run_command(main)
