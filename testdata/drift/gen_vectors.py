#!/usr/bin/env python3
"""Generate testdata/drift/vectors.json: reference values for processors/drift.

The Go tests read only the committed vectors.json; this script is how it was
made and how to remake it. It installs nothing itself. Environment used:

    python -m venv /tmp/driftvenv
    /tmp/driftvenv/bin/pip install evidently==0.7.23 scipy==1.17.1 \
        statsmodels==0.15.0 numpy==2.4.6 "pandas<3" (2.3.3; evidently 0.7.23 does not import with pandas 3)
    /tmp/driftvenv/bin/python testdata/drift/gen_vectors.py

Every dataset comes from a seeded numpy Generator, so a rerun with the same
library versions writes the same file (the versions are recorded in it).
Outputs come from scipy, statsmodels and Evidently's own stattest functions
(evidently.legacy.calculations.stattests), called on the same data.
"""
import json
import math
import os
import sys
import warnings

# Evidently orders categories by Python set iteration, which follows string
# hashing; fix the hash seed so reruns sum in the same order (last-ulp
# differences otherwise).
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np
import pandas as pd
import scipy
import scipy.stats as st
from scipy.spatial import distance
import statsmodels
from statsmodels.stats.multitest import multipletests
import evidently
from evidently.legacy.core import ColumnType
from evidently.legacy.calculations.stattests import registry as ev_registry
from evidently.legacy.calculations.stattests.utils import get_binned_data
from evidently.legacy.calculations.stattests.psi import _psi as ev_psi
from evidently.legacy.calculations.stattests.kl_div import _kl_div as ev_kl
from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon as ev_js
from evidently.legacy.calculations.stattests.hellinger_distance import _hellinger_distance as ev_hellinger
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import (
    _wasserstein_distance_norm as ev_wasserstein,
)
from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test as ev_ks
from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test as ev_chi
from evidently.legacy.calculations.stattests.z_stattest import _z_stat_test as ev_z

warnings.simplefilter("ignore")  # scipy/numpy warn on inf/nan results we record on purpose

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")


def num(x):
    """A float for JSON; non-finite values as strings Go decodes."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return x


def nums(xs):
    return [num(x) for x in xs]


def ks(ref, cur, method):
    r = st.ks_2samp(ref, cur, method=method)
    return {"stat": num(r.statistic), "pvalue": num(r.pvalue)}


def default_method(ref, cur, kind):
    return ev_registry._get_default_stattest(pd.Series(ref), pd.Series(cur), kind).name


def numeric_case(name, ref, cur):
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    sref, scur = pd.Series(ref), pd.Series(cur)
    c = {"name": name, "ref": nums(ref), "cur": nums(cur)}
    c["ks_auto"] = ks(ref, cur, "auto")
    c["ks_asymp"] = ks(ref, cur, "asymp")
    n1, n2 = len(ref), len(cur)
    g = math.gcd(n1, n2)
    if (n1 // g) < np.iinfo(np.int32).max / (n2 // g):
        c["ks_exact"] = ks(ref, cur, "exact")
    c["wasserstein"] = num(st.wasserstein_distance(ref, cur))
    c["ev_wasserstein_norm"] = num(ev_wasserstein(sref.copy(), scur.copy(), ColumnType.Numerical, 0.1)[0])
    c["ev_ks_pvalue"] = num(ev_ks(sref.copy(), scur.copy(), ColumnType.Numerical, 0.05)[0])
    # Evidently's binning for PSI / KL (zeros smoothed) and JS (not smoothed).
    rp, cp = get_binned_data(sref.copy(), scur.copy(), ColumnType.Numerical, 30, False)
    c["ev_binned_ref"] = nums(rp)
    c["ev_binned_cur"] = nums(cp)
    if ref.size and pd.Series(ref).nunique() > 20:
        c["ev_bin_edges"] = nums(np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges"))
    c["ev_psi"] = num(ev_psi(sref.copy(), scur.copy(), ColumnType.Numerical, 0.1)[0])
    c["ev_kl_div"] = num(ev_kl(sref.copy(), scur.copy(), ColumnType.Numerical, 0.1)[0])
    c["ev_jensenshannon"] = num(ev_js(sref.copy(), scur.copy(), ColumnType.Numerical, 0.1)[0])
    c["ev_hellinger"] = num(ev_hellinger(sref.copy(), scur.copy(), ColumnType.Numerical, 0.1)[0])
    keys = np.unique(np.concatenate([ref, cur]))
    c["ev_hellinger_edges"] = nums(np.histogram_bin_edges(keys, bins="sturges"))
    c["default_method"] = default_method(ref, cur, ColumnType.Numerical)
    c["std_ref"] = num(np.std(ref))
    return c


def categorical_case(name, ref, cur):
    """ref, cur: arrays of category labels (strings)."""
    sref, scur = pd.Series(ref, dtype=object), pd.Series(cur, dtype=object)
    keys = sorted(set(ref) | set(cur))
    rc = np.array([np.sum(np.asarray(ref) == k) for k in keys], dtype=np.float64)
    cc = np.array([np.sum(np.asarray(cur) == k) for k in keys], dtype=np.float64)
    c = {"name": name, "keys": keys, "ref_counts": nums(rc), "cur_counts": nums(cc)}
    # Evidently's chisquare: scipy.stats.chisquare with f_exp = ref * n_cur/n_ref.
    f_exp = rc * (cc.sum() / rc.sum())
    r = st.chisquare(cc, f_exp)
    c["chisquare"] = {"stat": num(r.statistic), "pvalue": num(r.pvalue)}
    c["ev_chisquare_pvalue"] = num(ev_chi(sref.copy(), scur.copy(), ColumnType.Categorical, 0.05)[0])
    keep = (rc + cc) > 0
    table = np.vstack([rc[keep], cc[keep]])
    r = st.chi2_contingency(table)
    c["chi2_contingency"] = {"stat": num(r.statistic), "pvalue": num(r.pvalue), "dof": int(r.dof)}
    if len(keys) <= 2:
        c["ev_z_pvalue"] = num(ev_z(sref.copy(), scur.copy(), ColumnType.Categorical, 0.05)[0])
    c["ev_psi"] = num(ev_psi(sref.copy(), scur.copy(), ColumnType.Categorical, 0.1)[0])
    c["ev_kl_div"] = num(ev_kl(sref.copy(), scur.copy(), ColumnType.Categorical, 0.1)[0])
    c["ev_jensenshannon"] = num(ev_js(sref.copy(), scur.copy(), ColumnType.Categorical, 0.1)[0])
    c["ev_hellinger"] = num(ev_hellinger(sref.copy(), scur.copy(), ColumnType.Categorical, 0.1)[0])
    c["default_method"] = default_method(list(ref), list(cur), ColumnType.Categorical)
    return c


def evidently_smooth(p):
    """get_binned_data's zero filling, on one proportion vector."""
    p = p.copy()
    nz = p[p != 0]
    fill = nz.min() / 10**6 if nz.min() <= 0.0001 else 0.0001
    np.place(p, p == 0, fill)
    return p


def distribution_case(name, rc, cc):
    rc = np.asarray(rc, dtype=np.float64)
    cc = np.asarray(cc, dtype=np.float64)
    rp, cp = rc / rc.sum(), cc / cc.sum()
    srp, scp = evidently_smooth(rp), evidently_smooth(cp)
    c = {"name": name, "ref_counts": nums(rc), "cur_counts": nums(cc)}
    c["psi"] = num(np.sum((srp - scp) * np.log(srp / scp)))  # Evidently's _psi formula
    c["kl_smoothed"] = num(st.entropy(srp, scp))  # = Evidently's kl_div
    c["kl_raw"] = num(st.entropy(rc, cc))
    c["jensenshannon"] = num(distance.jensenshannon(rc, cc))
    c["jensenshannon_base2"] = num(distance.jensenshannon(rc, cc, base=2))
    c["hellinger"] = num(math.sqrt(1 - np.clip(np.sum(np.sqrt(rp * cp)), 0, 1)))
    return c


def multitest_case(name, pvals, alpha):
    pvals = np.asarray(pvals, dtype=np.float64)
    rb, pb, _, _ = multipletests(pvals, alpha=alpha, method="bonferroni")
    rf, pf, _, _ = multipletests(pvals, alpha=alpha, method="fdr_bh")
    return {
        "name": name, "pvalues": nums(pvals), "alpha": alpha,
        "bonferroni": {"adjusted": nums(pb), "reject": [bool(x) for x in rb]},
        "fdr_bh": {"adjusted": nums(pf), "reject": [bool(x) for x in rf]},
    }


def main():
    rng = np.random.default_rng(20240611)
    r4 = lambda x: np.round(x, 4)  # keeps the large cases small on disk; makes ties
    numeric = [
        numeric_case("normal_20_vs_30_shift0.5", rng.normal(0, 1, 20), rng.normal(0.5, 1, 30)),
        numeric_case("normal_50_vs_50_shift0.3", rng.normal(0, 1, 50), rng.normal(0.3, 1, 50)),
        numeric_case("normal_200_vs_150_scale1.3", rng.normal(0, 1, 200), rng.normal(0, 1.3, 150)),
        numeric_case("normal_5000_vs_5000_shift0.05", r4(rng.normal(0, 1, 5000)), r4(rng.normal(0.05, 1, 5000))),
        numeric_case("normal_5000_vs_4000_shift0.1", r4(rng.normal(0, 1, 5000)), r4(rng.normal(0.1, 1, 4000))),
        numeric_case("normal_12000_vs_8000_shift0.02", r4(rng.normal(0, 1, 12000)), r4(rng.normal(0.02, 1, 8000))),
        numeric_case("normal_20000_vs_15000_shift0.1", r4(rng.normal(0, 1, 20000)), r4(rng.normal(0.1, 1, 15000))),
        numeric_case("normal_11000_vs_40_shift0.4", r4(rng.normal(0, 1, 11000)), r4(rng.normal(0.4, 1, 40))),
        numeric_case("normal_12000_vs_300_shift0.05", r4(rng.normal(0, 1, 12000)), r4(rng.normal(0.05, 1, 300))),
        numeric_case("normal_16000_vs_12000_shift0.03", r4(rng.normal(0, 1, 16000)), r4(rng.normal(0.03, 1, 12000))),
        numeric_case("normal_11000_vs_60_same", r4(rng.normal(0, 1, 11000)), r4(rng.normal(0, 1, 60))),
        numeric_case("uniform_10500_vs_20_shift", r4(rng.random(10500)), r4(rng.random(20) + 0.3)),
        numeric_case("poisson_300_vs_250_ties", rng.poisson(3.0, 300), rng.poisson(3.4, 250)),
        numeric_case("uniform_ints_1000_vs_1200", rng.integers(0, 50, 1000), rng.integers(0, 55, 1200)),
        numeric_case("lognormal_2000_vs_1500", rng.lognormal(0, 1, 2000), rng.lognormal(0.1, 1, 1500)),
        numeric_case("binary_500_vs_400", rng.integers(0, 2, 500), (rng.random(400) < 0.6).astype(int)),
        numeric_case("three_values_1500_vs_900", rng.integers(0, 3, 1500), rng.integers(0, 3, 900)),
        numeric_case("constant_ref_100", np.full(100, 2.5), rng.normal(2.5, 0.1, 80)),
        numeric_case("constant_both_equal", np.full(30, 1.0), np.full(20, 1.0)),
        numeric_case("identical_samples", np.arange(25.0), np.arange(25.0)),
        numeric_case("single_values", [1.0], [2.0]),
        numeric_case("disjoint_ranges", np.arange(10.0), np.arange(10.0) + 100),
    ]
    cat = lambda p, n: rng.choice(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"][: len(p)], size=n, p=p)
    categorical = [
        categorical_case("three_cats_shift", cat([0.5, 0.3, 0.2], 400), cat([0.4, 0.3, 0.3], 300)),
        categorical_case("ten_cats_5000", cat([0.1] * 10, 5000), cat([0.12, 0.08] + [0.1] * 8, 4000)),
        categorical_case("unseen_in_ref", cat([0.6, 0.4], 200), cat([0.5, 0.3, 0.2], 150)),
        categorical_case("missing_in_cur", cat([0.5, 0.3, 0.2], 300), cat([0.6, 0.4], 250)),
        categorical_case("binary_same_rate", cat([0.7, 0.3], 600), cat([0.7, 0.3], 500)),
        categorical_case("binary_shift", cat([0.7, 0.3], 600), cat([0.6, 0.4], 500)),
        categorical_case("binary_2000", cat([0.5, 0.5], 2000), cat([0.45, 0.55], 1800)),
        categorical_case("single_category", np.array(["a"] * 50), np.array(["a"] * 40)),
        categorical_case("four_cats_large_ref", cat([0.4, 0.3, 0.2, 0.1], 3000), cat([0.4, 0.3, 0.2, 0.1], 1000)),
    ]
    distributions = [
        distribution_case("no_zeros", [10, 20, 30, 40], [12, 18, 33, 37]),
        distribution_case("zero_in_cur", [10, 20, 30, 40], [0, 25, 35, 40]),
        distribution_case("zero_in_ref", [0, 20, 30, 50], [5, 25, 30, 40]),
        distribution_case("tiny_proportions", [1, 0, 20000, 30000], [0, 3, 25000, 24000]),
        distribution_case("identical", [3, 3, 4], [3, 3, 4]),
        distribution_case("scaled_identical", [1, 2, 3], [10, 20, 30]),
        distribution_case("hundred_bins", rng.integers(0, 100, 100), rng.integers(1, 120, 100)),
    ]
    multitest = [
        multitest_case("mixed", np.concatenate([rng.random(12), [1e-6, 0.001, 0.004, 0.01, 0.02, 0.049]]), 0.05),
        multitest_case("ties_and_ones", [0.01, 0.01, 0.5, 1.0, 0.03, 0.03, 0.2], 0.05),
        multitest_case("single", [0.03], 0.05),
        multitest_case("all_small", [0.001, 0.002, 0.003], 0.01),
    ]
    # The asymptotic KS null distribution at window sizes too big to store as
    # samples: scipy.stats.kstwo.sf(d, n), n = round(n1*n2/(n1+n2)).
    kstwo = [
        {"d": d, "n": n, "sf": num(st.kstwo.sf(d, n))}
        for d, n in [(0.004975, 178000), (0.0035, 178000), (0.0015, 178000), (0.0008, 178000),
                     (0.004, 2500000), (0.01, 40000), (0.02, 120), (0.3, 30), (0.6, 30), (0.97, 30)]
    ]
    out = {
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
            "evidently": evidently.__version__,
        },
        "numeric": numeric,
        "categorical": categorical,
        "distributions": distributions,
        "multitest": multitest,
        "kstwo_sf": kstwo,
    }
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"wrote {OUT}: {len(numeric)} numeric, {len(categorical)} categorical, "
          f"{len(distributions)} distribution, {len(multitest)} multitest cases")


if __name__ == "__main__":
    main()
