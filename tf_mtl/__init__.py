"""tf_mtl: multi-task learning research on Keras 3 / TensorFlow 2.

Measure which tasks help each other (transference / inter-task affinity)
while a Keras model trains, and act on it. The core (the model, its step's
per-task gradients, the lookahead, transference, probes, callbacks, encoders)
sits at the top; each paper's idea has its own package: ``updates`` (update
rules and IT-MTL), ``routing`` (Maximum Roaming, Task Routing, ETR-NLP),
``grouping`` (task grouping and network selection), ``interference``
(``000``'s metrics and protocol), ``experiments`` (training from configs,
seeds, results, checkpoints), ``data`` and ``benchmarks``.
"""

# An installed tf-mtl-* command starts here: its TensorFlow start-up logs are dropped
# before TensorFlow is imported (plain `import tf_mtl` is unchanged; tf_mtl.cli.startup).
from tf_mtl.cli.startup import quiet_console_script as _quiet_console_script

_quiet_console_script()

from tf_mtl import distribute, lookahead, probes, step_schedule, transference
from tf_mtl import data, encoders, routing, updates
from tf_mtl import callbacks, experiments, losses, grouping, interference, metrics, plots, rl
from tf_mtl.losses import FunctionLoss
from tf_mtl.model import MultiTaskModel

__version__ = "0.1.0"

__all__ = [
    "FunctionLoss",
    "MultiTaskModel",
    "callbacks",
    "data",
    "distribute",
    "encoders",
    "experiments",
    "grouping",
    "interference",
    "lookahead",
    "losses",
    "metrics",
    "plots",
    "probes",
    "rl",
    "routing",
    "step_schedule",
    "transference",
    "updates",
]
