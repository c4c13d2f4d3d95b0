#!/usr/bin/env python3
"""Generate testdata/drift/exact_vectors.json: scipy's ks_2samp (method='auto')
and wasserstein_distance on windows and references that Vigil keeps exactly
with its configurable caps (a reference of more than 10,000 values kept
whole, windows of more than 2,048 values kept whole), for
processors/drift/exact_vectors_test.go.

The Go test reads only the committed JSON. The samples are not stored: both
sides generate them with the same 64-bit LCG (Knuth's MMIX constants) and
the same float operations (a sum of three uniforms on [0, 1), the top 53 bits
of the state over 2^53; then (s - 1.5) * scale + shift), so they are
bit-identical in Python and Go. Environment used:

    python3 -m venv /tmp/statsvenv
    /tmp/statsvenv/bin/pip install scipy==1.17.1 numpy
    /tmp/statsvenv/bin/python testdata/drift/gen_exact_vectors.py

scipy's 'auto' is exact when max(n1, n2) <= 10000, else the finite-n
asymptotic distribution (kstwo); an exact computation that fails falls back
to it with a RuntimeWarning, which this script records as method 'asymp'.
"""
import json
import os
import warnings

import numpy as np
import scipy
import scipy.stats as st

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exact_vectors.json")
M64 = 2**64


def lcg_values(seed, n, shift, scale):
    state = seed % M64
    out = []
    for _ in range(n):
        s = 0.0
        for _ in range(3):
            state = (state * 6364136223846793005 + 1442695040888963407) % M64
            s += (state >> 11) / 9007199254740992.0
        out.append((s - 1.5) * scale + shift)
    return out


CASES = [
    # name, ref (seed, n, shift, scale), cur (seed, n, shift, scale), window exact cap
    ("ref 12000 kept whole, window 400, no shift", (1, 12000, 0.0, 2.0), (2, 400, 0.0, 2.0), 2048),
    ("ref 12000 kept whole, window 400, shift 0.15", (3, 12000, 0.0, 2.0), (4, 400, 0.15, 2.0), 2048),
    ("ref 8000, window 400, shift 0.1 (exact p)", (5, 8000, 0.0, 2.0), (6, 400, 0.1, 2.0), 2048),
    ("ref 20000 kept whole, window 5000 under cap 8192", (7, 20000, 0.0, 1.0), (8, 5000, 0.03, 1.0), 8192),
    ("ref 6000, window 5000 under cap 8192 (exact p)", (9, 6000, 0.0, 1.0), (10, 5000, 0.02, 1.1), 8192),
    ("ref 30000 kept whole, window 2000, scaled", (11, 30000, 5.0, 3.0), (12, 2000, 5.0, 3.3), 2048),
]


def main():
    cases = []
    for name, r, c, cap in CASES:
        ref = np.array(lcg_values(*r))
        cur = np.array(lcg_values(*c))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = st.ks_2samp(ref, cur, method="auto")
        method = "exact" if max(len(ref), len(cur)) <= 10000 else "asymp"
        if any("Switching to method=asymp" in str(w.message) for w in caught):
            method = "asymp"
        cases.append({
            "name": name,
            "ref": dict(zip(["seed", "n", "shift", "scale"], r)),
            "cur": dict(zip(["seed", "n", "shift", "scale"], c)),
            "exact_cap": cap,
            "ks_stat": float(res.statistic),
            "ks_pvalue": float(res.pvalue),
            "ks_method": method,
            "wasserstein": float(st.wasserstein_distance(ref, cur)),
            "first_ref_values": [float(x) for x in ref[:3]],
        })
    with open(OUT, "w") as f:
        json.dump({"scipy": scipy.__version__, "numpy": np.__version__, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
