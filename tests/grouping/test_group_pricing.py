"""group_pricing.Pricer against a brute force over every group of each size.

The worth of a group at duals ``pi`` is written here from its definition
(``sum_{p in G} max(0, mean_{q in G - p} W[p, q] - pi[p])``), not from the pricer.
"""

import itertools
import time

import numpy as np
import pytest

from tf_mtl.grouping.group_pricing import Pricer


def _worths(W, pi, s):
    """``{group: worth}`` for every group of size ``s``, from the definition."""
    out = {}
    for group in itertools.combinations(range(len(W)), s):
        worth = 0.0
        for p in group:
            mean = np.mean([W[p, q] for q in group if q != p])
            worth += max(0.0, mean - pi[p])
        out[group] = worth
    return out


def _instance(seed, n=8):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, n))
    assert not np.allclose(W, W.T)  # Asymmetric: W[p, q] is what q gives p.
    return W, rng.normal(0.2, 0.5, size=n)


@pytest.mark.parametrize("seed", range(4))
def test_best_group_and_root_bound_match_brute_force(seed):
    W, pi = _instance(seed)
    pricer = Pricer(W, pi, deadline=np.inf)
    for s in range(2, len(W) + 1):
        worths = _worths(W, pi, s)
        _, best, open_bound = pricer.solve(s, -1.0, collect=False)
        assert best == pytest.approx(max(worths.values()), abs=1e-9)
        assert open_bound == -np.inf  # Finished.
        assert pricer.root_bound(s) >= max(worths.values()) - 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_collect_finds_exactly_the_groups_above_the_threshold(seed):
    W, pi = _instance(10 + seed)
    pricer = Pricer(W, pi, deadline=np.inf)
    for s in (2, 4, 6):
        worths = _worths(W, pi, s)
        threshold = float(np.quantile(list(worths.values()), 0.7))
        columns, _, _ = pricer.solve(s, threshold, collect=True)
        found = {tuple(sorted(int(t) for t in c)) for c in columns}
        assert found == {g for g, w in worths.items() if w > threshold + 1e-9}


def test_transposed_scores_price_differently():
    # The member's partners are its row: W.T gives other worths (a swapped index shows).
    W, pi = _instance(3)
    best = [Pricer(M, pi, np.inf).solve(4, -1.0, False)[1] for M in (W, W.T)]
    assert best[0] == pytest.approx(max(_worths(W, pi, 4).values()), abs=1e-9)
    assert best[1] == pytest.approx(max(_worths(W.T, pi, 4).values()), abs=1e-9)
    assert abs(best[0] - best[1]) > 1e-6


@pytest.mark.parametrize("limit", ["nodes", "deadline"])
def test_a_stopped_search_still_bounds_the_best_group(limit):
    W, pi = _instance(5, n=10)
    truth = max(_worths(W, pi, 5).values())
    pricer = (Pricer(W, pi, np.inf, node_limit=1) if limit == "nodes"
              else Pricer(W, pi, deadline=time.monotonic() - 1.0))
    _, best, open_bound = pricer.solve(5, -1.0, collect=False)
    assert open_bound > -np.inf  # Stopped early, and said so.
    assert max(best, open_bound) >= truth - 1e-9
    assert best <= truth + 1e-9
