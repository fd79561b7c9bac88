"""One worker of tests/test_multiworker.py's two-process MultiWorkerMirroredStrategy run
(TF_CONFIG set by the test): trains the quickstart through ``experiment.train`` with a
probe every 2 steps, then saves its weights to ``<out>/weights_<index>.npz``.

    python tests/multiworker_check.py WORKDIR OUT
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np  # noqa: E402

from tf_mtl.experiments import experiment  # noqa: E402


def quickstart(strategy):
    """The quickstart smoke run (4 steps of 64 examples), measuring every 2 steps."""
    config = experiment_config()
    config.strategy = strategy
    return config


def experiment_config():
    sys.path.insert(0, os.getcwd())
    from configs import quickstart as module
    config = module.get_config("runlocal")
    config.transference.every = 2
    config.verbose = 0
    return config


def main():
    workdir, out = sys.argv[1:3]
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    result = experiment.train(quickstart("multiworker"), workdir)
    assert result["strategy"].endswith(", 2 replicas"), result["strategy"]  # 1 CPU a worker
    np.savez(os.path.join(out, f"weights_{index}.npz"), *result["model"].get_weights())
    with open(os.path.join(out, f"result_{index}.json"), "w") as f:
        json.dump({"files": result["files"], "history": result["history"]}, f)
    print("worker", index, "done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
