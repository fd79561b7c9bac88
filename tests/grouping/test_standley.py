"""002's published results files: the reader, serving on the test file, and 002's curves recomputed.

Independent computations: hand-written files with losses chosen so the answer is known, and a brute
force over every subset of candidate networks (written here from 002 §3.2's definition).
"""

import itertools

import numpy as np
import pytest

from tf_mtl.grouping import Network, read_standley, select_networks, standley

VALIDATION = ("0.50\t0.40\t0.30\n"       # half-size singles s, d, n
              "0.45\t\t\n"                 # s
              "\t0.35\t\n"                 # d
              "\t\t0.28\n"                 # n
              "0.41\t0.38\t\n"             # s|d
              "0.44\t\t0.20\n"             # s|n
              "\t0.33\t0.26\n"             # d|n
              "0.42\t0.37\t0.25\n")        # s|d|n
TEST = ("0.52\t0.41\t0.31\n0.46\t\t\n\t0.36\t\n\t\t0.29\n0.43\t0.39\t\n0.40\t\t0.22\n"
        "\t0.34\t0.21\n0.44\t0.38\t0.24\n")


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _brute_force(networks, budget):
    """Every subset within the budget that covers every task, of at most one network per task
    (more adds a network that serves nothing): (total loss, names), best first."""
    tasks = sorted({t for n in networks for t in n.tasks})
    found = []
    for k in range(1, len(tasks) + 1):
        for combo in itertools.combinations(networks, k):
            if sum(n.cost for n in combo) > budget + 1e-9:
                continue
            if {t for n in combo for t in n.tasks} != set(tasks):
                continue
            total = sum(min(n.scores[t] for n in combo if t in n.tasks) for t in tasks)
            found.append((round(total, 9), sorted(n.name for n in combo)))
    return sorted(found)


def _test_total(names, test_networks):
    chosen = [n for n in test_networks if n.name in names]
    return sum(min(n.scores[t] for n in chosen if t in n.tasks) for t in {t for n in chosen
                                                                         for t in n.tasks})


def test_reader_half_size_row_then_full_size_rows(tmp_path):
    nets = read_standley(_write(tmp_path, "v.txt", VALIDATION), tasks="sdn")
    assert [n.name for n in nets] == ["s (half)", "d (half)", "n (half)", "s", "d", "n", "s|d",
                                      "s|n", "d|n", "s|d|n"]
    assert [n.cost for n in nets] == [0.5] * 3 + [1.0] * 7
    assert nets[1].tasks == ("d",) and nets[1].scores == {"d": 0.40}
    assert nets[7].tasks == ("s", "n") and nets[7].scores == {"s": 0.44, "n": 0.20}
    assert nets[9].scores == {"s": 0.42, "d": 0.37, "n": 0.25}


@pytest.mark.parametrize("text, message", [
    (VALIDATION.replace("0.44\t\t0.20\n", "0.44\t\t0.20\t\n"), "Row 6 .* 3 tab-separated columns"
                                                              ".*Received: 4 columns"),
    (VALIDATION.replace("\t0.35\t\n", "\t0.35\n"), "Row 3 .*Received: 2 columns"),
    (VALIDATION.replace("0.50\t0.40\t0.30", "0.50\t\t0.30"), "Row 1 .*half-size"),
    (VALIDATION.replace("\t\t0.28\n", "\t\t0.28\n0.45\t\t\n"), "Rows 2 and 5 .*\\('s',\\)"),
    (VALIDATION.replace("0.41\t0.38", "0.41\tabc"), "Row 5 .*not a number.*'abc'"),
    (VALIDATION.replace("\t\t0.28\n", "\t\t\n"), "Row 4 .*names no task"),
])
def test_reader_refuses_malformed_rows(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_standley(_write(tmp_path, "v.txt", text), tasks="sdn")


def test_served_test_loss_of_a_selection_by_hand(tmp_path):
    val = read_standley(_write(tmp_path, "v.txt", VALIDATION), tasks="sdn")
    test = read_standley(_write(tmp_path, "t.txt", TEST), tasks="sdn")
    # Budget 1.5 by hand: s|n (1) + d (half) gives 0.44 + 0.40 + 0.20 = 1.04; s|d|n alone 1.04;
    # s|d + n (half) 0.41 + 0.38 + 0.30 = 1.09; d|n + s (half) 0.50 + 0.33 + 0.26 = 1.09.
    # The tie of 1.04 is broken by the search order; both are checked against the brute force.
    sel = select_networks(val, 1.5, maximize=False, aggregate="sum")
    assert sel.value == pytest.approx(1.04)
    assert _brute_force(val, 1.5)[0][0] == pytest.approx(1.04)
    # Budget 2: s|n + d|n = 0.44 + 0.33 + 0.20 = 0.97; next s|n + d (full) 0.99, s|d + s|n 0.99.
    sel = select_networks(val, 2.0, maximize=False, aggregate="sum")
    assert sorted(n.name for n in sel.networks) == ["d|n", "s|n"]
    assert _brute_force(val, 2.0)[:2] == [(0.97, ["d|n", "s|n"]), (0.99, ["d", "s|n"])]
    # On the test file, 002's rule: s 0.40 (s|n), d 0.34 (d|n), n 0.21 (d|n, best on test);
    # served as chosen on validation: n by s|n (0.20 < 0.26 there), 0.22 on test.
    assert standley.serve(sel, test) == pytest.approx(0.40 + 0.34 + 0.21)
    assert standley.serve(sel, test, "validation") == pytest.approx(0.40 + 0.34 + 0.22)
    # Budget 1: only s|d|n covers: its test total.
    one = select_networks(val, 1.0, maximize=False, aggregate="sum")
    assert [n.name for n in one.networks] == ["s|d|n"]
    assert standley.serve(one, test) == pytest.approx(0.44 + 0.38 + 0.24)


def test_test_serving_takes_the_best_on_test_validation_serving_the_chosen_one(tmp_path):
    val = read_standley(_write(tmp_path, "v.txt", VALIDATION), tasks="sdn")
    test = read_standley(_write(tmp_path, "t.txt", TEST), tasks="sdn")
    # Budget 2.5 by brute force: s|n + d|n + d (half)? The engine's choice is checked against it.
    sel = select_networks(val, 2.5, maximize=False, aggregate="sum")
    best = _brute_force(val, 2.5)[0]
    assert sel.value == pytest.approx(best[0])
    names = [n.name for n in sel.networks]
    served = {t: names[i] for t, i in sel.served_by.items()}
    by_name = {n.name: n for n in test}
    by_validation = sum(by_name[served[t]].scores[t] for t in "sdn")
    assert standley.serve(sel, test, "validation") == pytest.approx(by_validation)
    assert standley.serve(sel, test) == pytest.approx(_test_total(names, test))


def test_half_and_full_single_are_different_networks_in_a_selection(tmp_path):
    val = read_standley(_write(tmp_path, "v.txt", VALIDATION), tasks="sdn")
    # Budget 1.5 with s|d|n removed: s|n + d (half) (1.04) beats s|d + n (half) and d|n + s (half).
    sel = select_networks([n for n in val if n.name != "s|d|n"], 1.5, maximize=False,
                          aggregate="sum")
    assert [(n.name, n.cost) for n in sel.networks] == [("d (half)", 0.5), ("s|n", 1.0)]
    assert sel.groups == [("d",), ("s", "n")]
    assert {t: sel.networks[i].name for t, i in sel.served_by.items()} == {
        "d": "d (half)", "s": "s|n", "n": "s|n"}


def test_tied_task_is_served_by_the_first_chosen_network():
    nets = [Network(("a", "c"), 1.0, {"a": 1.0, "c": 1.0}, name="ac"),
            Network(("a", "b"), 1.0, {"a": 1.0, "b": 2.0}, name="ab")]
    sel = select_networks(nets, 2.0, maximize=False)
    assert [n.name for n in sel.networks] == ["ab", "ac"]   # Sorted by task tuple.
    assert sel.served_by == {"a": 0, "b": 0, "c": 1}
    assert sel.serving["a"] == ("a", "b")


def test_budget_below_the_cheapest_cover_is_refused():
    nets = read_standley(standley.standley_path("results.txt"))
    with pytest.raises(ValueError, match=r"Received: budget=0.9; the cheapest cover costs 1.0"):
        select_networks(nets, 0.9, maximize=False, aggregate="sum")


def test_hoa_by_hand(tmp_path):
    hoa = {n.name: n for n in standley.hoa_networks(
        read_standley(_write(tmp_path, "v.txt", VALIDATION), tasks="sdn"))}
    # s|d|n: s from s|d, s|n; d from s|d, d|n; n from s|n, d|n.
    assert hoa["s|d|n"].scores == pytest.approx({"s": (0.41 + 0.44) / 2, "d": (0.38 + 0.33) / 2,
                                                 "n": (0.20 + 0.26) / 2})
    assert hoa["s|n"].scores == {"s": 0.44, "n": 0.20} and hoa["s (half)"].cost == 0.5


def test_unknown_packaged_file_and_setting_refused():
    with pytest.raises(ValueError, match="Received: name='standley_results_x.txt'"):
        standley.standley_path("results_x.txt")
    with pytest.raises(ValueError, match="Received: setting=5"):
        standley.standley_curves(5)


# (setting, method, budget index) where 002's published value is another selection of the same
# value on the file it selects on (a tie), and budget 1 of setting 1 (below). Setting 4's budget
# 5 matches since a chosen network serving no task is dropped (its tie had an unused network).
TIES = {(1, "hoa", 7), (1, "hoa", 8), (4, "hoa", 5), (4, "hoa", 6), (4, "hoa", 7)}


@pytest.mark.parametrize("setting", [1, 2, 3, 4])
def test_published_curves_reproduced(setting):
    curves = standley.standley_curves(setting, random_trials=0)
    published = standley.PUBLISHED[setting]
    files = [read_standley(standley.standley_path(n)) for n in standley.STANDLEY_SETTINGS[setting]]
    validation, test, esa = files
    chosen_on = {"optimal": validation, "esa": esa, "hoa": standley.hoa_networks(validation)}
    for method in ("optimal", "esa", "hoa"):
        for i, budget in enumerate(standley.STANDLEY_BUDGETS):
            ours, theirs = curves[method][i], published[method][i]
            if setting == 1 and i == 0 and method != "hoa":
                # 002's plot has 0.50273 for the all-task network, its own HOA row (the same
                # network, the only cover at budget 1) and the file: 0.50278.
                assert theirs == 0.50273 and ours == pytest.approx(0.50278, abs=1e-9)
                assert published["hoa"][0] == 0.50278
            elif (setting, method, i) in TIES:
                ties = _brute_force(chosen_on[method], budget)
                best = [names for value, names in ties if value == ties[0][0]]
                totals = [_test_total(names, test) for names in best]
                assert ours == pytest.approx(min(totals, key=lambda v: abs(v - ours)), abs=1e-9)
                assert any(abs(t - theirs) < 6e-6 for t in totals), (method, budget, totals)
                assert abs(ours - theirs) > 1e-5
            else:
                assert ours == pytest.approx(theirs, abs=6e-6), (method, budget)


def test_random_curve_matches_published_within_sampling_error():
    test = read_standley(standley.standley_path("results_test.txt"))
    curve = standley.random_curve(test, trials=1500, seed=1)
    # Budget 1: only the all-task network fits and covers.
    assert curve[0] == pytest.approx(sum(test[-1].scores.values()), abs=1e-12)
    assert np.allclose(curve, standley.PUBLISHED[1]["random"], atol=2.5e-3)
    assert curve[-1] < curve[0] - 0.03


def test_a_chosen_network_that_serves_no_task_is_dropped():
    # s is served as well by s|d as by the half single: a selection holding both serves s
    # from s|d (listed first: sorted task tuples), so the single serves nothing; the rule
    # keeps the same value at the lower cost.
    from tf_mtl.grouping.network_selection import Network
    candidates = [Network(("s",), 0.5, {"s": 0.3}, "s (half)"),
                  Network(("s", "d"), 1.0, {"s": 0.3, "d": 0.3}, "s|d")]
    for budget in (1.0, 1.5):
        sel = select_networks(candidates, budget, maximize=False, aggregate="sum")
        assert [n.name for n in sel.networks] == ["s|d"], budget
        assert (sel.value, sel.cost, sel.served_by) == (pytest.approx(0.6), 1.0,
                                                        {"s": 0, "d": 0})
