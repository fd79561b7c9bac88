"""The statistics ``000``'s tables and figures use: mean ± standard error, the paired t-test,
the least-squares line with its R².

The t-test's p-value is computed here (no SciPy dependency): Student's t
distribution with an integer number of degrees of freedom ``ν`` has a closed
form (Abramowitz & Stegun 26.7.3–26.7.4). With ``θ = atan(|t| / sqrt(ν))``,
``P(|T| <= |t|)`` is

* ``ν`` odd:  ``(2/π) (θ + sin θ (cos θ + 2/3 cos³θ + … + (2·4…(ν−3))/(1·3…(ν−2)) cos^(ν−2) θ))``
  (``2θ/π`` for ``ν = 1``),
* ``ν`` even: ``sin θ (1 + 1/2 cos²θ + (1·3)/(2·4) cos⁴θ + … + (1·3…(ν−3))/(2·4…(ν−2)) cos^(ν−2) θ)``,

and the two-sided p-value is one minus it.
"""

import math

import numpy as np


def mean_se(values):
    """``(mean, standard error, n)`` over the finite entries of ``values``; the standard
    error is ``std(ddof=1) / sqrt(n)``, NaN for ``n < 2`` (the mean is NaN for ``n = 0``)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = int(v.size)
    mean = float(v.mean()) if n else float("nan")
    se = float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return mean, se, n


def t_two_sided_p(t, df):
    """``P(|T| >= |t|)`` for Student's t with ``df`` (a positive int) degrees of freedom."""
    if not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"`df` must be a positive int. Received: df={df!r}")
    if math.isnan(t):
        return float("nan")
    if math.isinf(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:
        term, total = math.cos(theta), 0.0
        if df > 1:
            total = term
            for k in range(3, df - 1, 2):    # term_k = term_{k-2} · (k−1)/k · cos²θ
                term *= (k - 1) / k * c2
                total += term
        inside = (2.0 / math.pi) * (theta + s * total)
    else:
        term, total = 1.0, 1.0
        for k in range(2, df - 1, 2):        # term_k = term_{k-2} · (k−1)/k · cos²θ
            term *= (k - 1) / k * c2
            total += term
        inside = s * total
    return float(min(1.0, max(0.0, 1.0 - inside)))


def paired_ttest(a, b):
    """Paired t-test of ``a`` against ``b`` (same length; pairs with a non-finite entry are
    dropped): ``{"t", "p", "n", "mean_difference"}``, ``p`` two-sided with ``n − 1``
    degrees of freedom. Fewer than 2 pairs, or differences all equal to 0, give NaN; equal
    non-zero differences give ``t = ±inf``, ``p = 0``.

    Example:
        >>> r = tf_mtl.interference.stats.paired_ttest([1.0, 2.0, 3.0, 4.5], [0.5, 1.0, 2.5, 3.0])
        >>> r["n"], r["mean_difference"], round(r["t"], 3), round(r["p"], 3)
        (4, 0.875, 3.656, 0.035)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"`a` and `b` must be 1-D of the same length. Received: shapes "
                         f"{a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return {"t": float("nan"), "p": float("nan"), "n": n, "mean_difference": mean}
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        t = float("nan") if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(n))
    return {"t": t, "p": t_two_sided_p(t, n - 1), "n": n, "mean_difference": mean}


def fit_line(x, y):
    """Least-squares ``y = slope x + intercept`` over finite pairs: ``(slope, intercept, r2)``;
    NaNs when fewer than 2 distinct ``x``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - slope * x - intercept) ** 2)) / total if total > 0 else 1.0
    return float(slope), float(intercept), r2
