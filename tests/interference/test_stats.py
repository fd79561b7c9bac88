"""Mean ± standard error, the paired t-test (p from the t distribution's closed form) and
the least-squares line, against printed tables and hand computations."""

import math

import numpy as np
import pytest

from tf_mtl.interference import stats


@pytest.mark.parametrize("t, df, p", [
    # Two-sided critical values of Student's t as printed in tables.
    (12.706, 1, 0.05), (4.303, 2, 0.05), (3.182, 3, 0.05), (2.776, 4, 0.05),
    (4.032, 5, 0.01), (2.228, 10, 0.05), (2.110, 17, 0.05), (2.898, 17, 0.01),
    (1.697, 30, 0.10), (0.0, 7, 1.0),
])
def test_p_values_match_t_tables(t, df, p):
    assert stats.t_two_sided_p(t, df) == pytest.approx(p, abs=2e-4)
    assert stats.t_two_sided_p(-t, df) == stats.t_two_sided_p(t, df)


def test_p_values_match_scipy():
    from scipy import stats as scipy_stats   # the test extra installs SciPy
    for df in (1, 2, 3, 6, 11, 24, 53):
        for t in (0.1, 0.9, 2.5, 7.0):
            assert stats.t_two_sided_p(t, df) == pytest.approx(
                2 * scipy_stats.t.sf(t, df), rel=1e-9, abs=1e-14)


def test_paired_ttest_by_hand():
    a = np.array([3.0, 5.0, 4.0, 9.0, np.nan])
    b = np.array([1.0, 4.0, 4.5, 6.0, 2.0])
    r = stats.paired_ttest(a, b)
    d = np.array([2.0, 1.0, -0.5, 3.0])          # The NaN pair is dropped.
    sd = math.sqrt(np.sum((d - d.mean()) ** 2) / 3)
    assert r["n"] == 4 and r["mean_difference"] == pytest.approx(1.375)
    assert r["t"] == pytest.approx(1.375 / (sd / 2))
    assert r["p"] == pytest.approx(stats.t_two_sided_p(r["t"], 3))
    assert stats.paired_ttest(b[:4], a[:4])["t"] == pytest.approx(-r["t"])
    same = stats.paired_ttest([1.0, 2.0], [0.0, 1.0])
    assert same["t"] == math.inf and same["p"] == 0.0
    assert math.isnan(stats.paired_ttest([1.0, 2.0], [1.0, 2.0])["p"])
    assert math.isnan(stats.paired_ttest([1.0], [0.0])["t"])
    with pytest.raises(ValueError, match=r"same length. Received: shapes \(2,\) and \(3,\)"):
        stats.paired_ttest([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="Received: df=0"):
        stats.t_two_sided_p(1.0, 0)


def test_mean_se_and_fit_line():
    mean, se, n = stats.mean_se([1.0, 2.0, 6.0, float("nan")])
    assert (mean, n) == (3.0, 3) and se == pytest.approx(math.sqrt(7.0 / 3.0))
    assert math.isnan(stats.mean_se([4.0])[1]) and math.isnan(stats.mean_se([])[0])
    slope, intercept, r2 = stats.fit_line([0, 1, 2, 3], [1, -1, -3, -5])
    assert (slope, intercept, r2) == pytest.approx((-2.0, 1.0, 1.0))
    slope, intercept, r2 = stats.fit_line([0, 1, 2], [0, 2, 1])
    assert slope == pytest.approx(0.5) and r2 == pytest.approx(0.25)   # SS_res 1.5 / SS_tot 2
    assert all(math.isnan(v) for v in stats.fit_line([1, 1], [0, 2]))
