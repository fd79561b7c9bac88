"""MultiWorkerMirroredStrategy for real: two worker processes on this machine."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

from tests.fresh_process import ROOT, TESTS, checkout_env

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


def _run_workers(workdir, out, timeout):
    """Both workers on ``workdir`` (shared, as on a shared filesystem): [(returncode, output)]."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    try:
        for index in range(2):
            env = checkout_env({"TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}})})
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(TESTS, "multiworker_check.py"),
                 str(workdir), str(out)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True))
        deadline = time.monotonic() + timeout
        outputs = [p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
                   for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(p.returncode, out) for p, out in zip(procs, outputs)]


def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    """Quickstart, 4 global batches of 64, exact transference every 2 steps: both workers
    end with the same weights and logs as one process on the same global batches;
    worker 0 (the chief) writes the run's files, worker 1 none. Launched again on the
    finished workdir, both workers refuse it alike (no hang)."""
    workdir = tmp_path / "run"
    for index, (code, out) in enumerate(_run_workers(workdir, tmp_path, TIMEOUT)):
        assert code == 0 and f"worker {index} done" in out, out[-4000:]
    before = sorted(os.listdir(workdir))

    sys.path.insert(0, TESTS)
    from multiworker_check import quickstart
    from tf_mtl.experiments import experiment
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
    assert {"config.json", "metrics.csv", "model.keras", "affinity.json",
            "groups.json", "checkpoint.bin"} <= set(before)
    assert results[0]["files"] and results[1]["files"] == []
    assert all(str(workdir) in f for f in results[0]["files"])

    again = _run_workers(workdir, tmp_path, 120)
    for code, out in again:
        assert code != 0 and "Multi-worker runs do not resume" in out, out[-4000:]
    assert sorted(os.listdir(workdir)) == before
