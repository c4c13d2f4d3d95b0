"""Test vectors for the bin edges, histograms and quantile summaries of
processors/reference, computed with numpy (an independent implementation).

Run from this folder: python3 quantiles.py > quantiles.json

- edges: np.quantile(x, np.arange(bins+1)/bins, method="linear") with equal
  edges merged (np.unique; a constant sample gets [v, v]);
- hist: counts per bin with an underflow and an overflow bin: bin =
  np.searchsorted(edges, x, side="right") (edges <= x), x == max in the last
  inner bin, x < min in bin 0, x > max in bin len(edges);
- summary: np.quantile(x, (j+1)/m, method="inverted_cdf") for j < m.
"""
import json

import numpy as np


def case(name, x, bins, m):
    x = np.asarray(x, dtype=np.float64)
    edges = np.unique(np.quantile(x, np.arange(bins + 1) / bins, method="linear"))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    idx = np.searchsorted(edges, x, side="right")
    idx = np.where(x == edges[-1], len(edges) - 1, idx)
    idx = np.where(x < edges[0], 0, idx)
    hist = np.bincount(idx, minlength=len(edges) + 1)
    summary = np.quantile(x, (np.arange(m) + 1) / m, method="inverted_cdf")
    return {
        "name": name,
        "values": [float(v) for v in x],
        "bins": bins,
        "edges": [float(v) for v in edges],
        "hist": [int(v) for v in hist],
        "summary_size": m,
        "summary": [float(v) for v in summary],
    }


rng = np.random.default_rng(20261126)
cases = [
    case("one to ten", np.arange(1, 11), 10, 4),
    case("mostly zeros", [0] * 8 + [1, 2], 10, 3),
    case("constant", [5, 5, 5], 10, 2),
    case("negative, 4 bins", [-3.5, -1, 0, 0.25, 2, 7, 7], 4, 5),
    case("normal 1000", rng.normal(10, 3, 1000), 10, 64),
    case("lognormal 997, 7 bins", rng.lognormal(0, 1, 997), 7, 100),
    case("integers with ties 500", rng.integers(0, 6, 500), 10, 50),
]
print(json.dumps({"numpy": np.__version__, "cases": cases}, indent=1))
