"""MultiWorkerMirroredStrategy for real: two worker processes on this machine."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

from fresh_process import ROOT, TESTS, checkout_env

TIMEOUT = 240  # seconds for both workers together


def _free_ports(count):
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    """Quickstart, 4 global batches of 64, exact transference every 2 steps: both workers
    end with the same weights and logs as one process on the same global batches;
    worker 0 (the chief) writes the run's files, worker 1 none."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    try:
        for index in range(2):
            env = checkout_env({"TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}})})
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(TESTS, "multiworker_check.py"),
                 str(tmp_path / f"run_{index}"), str(tmp_path)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True))
        deadline = time.monotonic() + TIMEOUT
        outputs = [p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
                   for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for index, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0 and f"worker {index} done" in out, out[-4000:]

    sys.path.insert(0, TESTS)
    from multiworker_check import quickstart
    from tf_mtl import experiment
    single = experiment.train(quickstart("default"), str(tmp_path / "single"))
    weights = [np.load(tmp_path / f"weights_{i}.npz") for i in range(2)]
    reference = single["model"].get_weights()
    for i in range(2):
        assert len(weights[i].files) == len(reference)
        for k, w in enumerate(reference):
            np.testing.assert_allclose(weights[i][f"arr_{k}"], w, rtol=1e-4, atol=1e-6,
                                       err_msg=f"worker {i}, weight {k}")
    results = [json.loads((tmp_path / f"result_{i}.json").read_text()) for i in range(2)]
    for key, values in single["history"].items():
        for i in range(2):
            np.testing.assert_allclose(results[i]["history"][key], values, rtol=2e-4,
                                       atol=1e-6, err_msg=f"worker {i}: {key}")
    assert single["history"]["transference/steps"] == [2.0]   # steps 0 and 2 of 4
    chief_files = sorted(os.listdir(tmp_path / "run_0"))
    assert {"config.json", "metrics.csv", "model.keras", "affinity.json",
            "groups.json"} <= set(chief_files)
    assert results[0]["files"] and results[1]["files"] == []
    assert not (tmp_path / "run_1").exists() or os.listdir(tmp_path / "run_1") == []
