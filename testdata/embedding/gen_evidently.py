#!/usr/bin/env python3
"""Test vectors for embedding drift (processors/drift): Evidently 0.7's
embedding drift methods on committed vectors.

The Go test reads only the committed files; this script is how they were
made and how to remake them (it installs nothing itself):

    python3 -m venv /tmp/embvenv
    /tmp/embvenv/bin/pip install evidently==0.7.23 "pandas<3" scipy numpy
    /tmp/embvenv/bin/python testdata/embedding/gen_evidently.py

Writes reference.jsonl (2000 reference rows: a 12-dimensional embedding
"emb" and a prediction score, as `vigil reference build` reads them) and
evidently.json: per window (its vectors, and Evidently's numbers for them)
the score and verdict of Evidently's DistanceDriftMethod (euclidean and
cosine, defaults: threshold 0.2) and RatioDriftMethod (defaults: component
test "wasserstein" at 0.1, threshold 0.2), and each component's normed
Wasserstein distance from Evidently's stattest. Windows:

  - unshifted: 400 vectors from the reference's distribution;
  - shifted: 400 vectors, components 0-4 shifted by 0.6 of their std;
  - sketched: 3000 vectors (more than Vigil's exact cap of 2048 values per
    window, so the window is summarised by KLL sketches), components 0-2
    shifted, component 3 shifted by ~0.1 std (near the component threshold).

Values are rounded to 4 decimals before anything is computed, so Vigil
reads exactly the numbers Evidently saw. Every dataset comes from a seeded
numpy Generator: a rerun with the same versions writes the same files.
"""
import json
import os

import numpy as np
import pandas as pd
import scipy
import evidently
from evidently.legacy.core import ColumnType
from evidently.legacy.metrics.data_drift.embedding_drift_methods import DistanceDriftMethod, RatioDriftMethod
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm

HERE = os.path.dirname(os.path.abspath(__file__))
DIM = 12
rng = np.random.default_rng(20261203)

# Components with different scales and shapes, two of them correlated.
means = rng.normal(0, 1, DIM)
scales = rng.uniform(0.2, 2.0, DIM)


def vectors(n, shift=None):
    z = rng.normal(size=(n, DIM))
    z[:, 5] = 0.8 * z[:, 4] + 0.6 * z[:, 5]        # correlated pair
    z[:, 7] = rng.exponential(1.0, n) - 1.0         # skewed
    z[:, 9] = rng.standard_t(3, n) / 2              # heavy tails
    x = means + scales * z
    if shift:
        for j, s in shift.items():
            x[:, j] += s * scales[j]
    return np.round(x, 4)


reference = vectors(2000)
windows = {
    "unshifted": vectors(400),
    "shifted": vectors(400, {0: 0.6, 1: 0.6, 2: 0.6, 3: 0.6, 4: 0.6}),
    "sketched": vectors(3000, {0: 0.8, 1: 0.8, 2: 0.8, 3: 0.1}),
}
scores = np.round(rng.random(2000), 4)

with open(os.path.join(HERE, "reference.jsonl"), "w") as f:
    for v, s in zip(reference, scores):
        f.write(json.dumps({"emb": [float(x) for x in v], "prediction_score": float(s)}) + "\n")


def frame(x):
    return pd.DataFrame(x, columns=[f"emb_{j}" for j in range(DIM)])


out = {
    "versions": {"evidently": evidently.__version__, "numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__},
    "dim": DIM,
    "windows": {},
}
ref_df = frame(reference)
for name, cur in windows.items():
    cur_df = frame(cur)
    row = {"vectors": [[float(x) for x in v] for v in cur]}
    for dist in ("euclidean", "cosine"):
        score, drifted, _ = DistanceDriftMethod(dist=dist)(cur_df.copy(), ref_df.copy())
        row[dist] = {"score": float(score), "drifted": bool(drifted)}
    score, drifted, _ = RatioDriftMethod()(cur_df.copy(), ref_df.copy())
    row["ratio"] = {"score": float(score), "drifted": bool(drifted)}
    row["component_wasserstein_norm"] = [
        float(_wasserstein_distance_norm(ref_df.iloc[:, j], cur_df.iloc[:, j], ColumnType.Numerical, 0.1)[0])
        for j in range(DIM)
    ]
    out["windows"][name] = row

with open(os.path.join(HERE, "evidently.json"), "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
for name, row in out["windows"].items():
    print(name, {k: row[k] for k in ("euclidean", "cosine", "ratio")})
