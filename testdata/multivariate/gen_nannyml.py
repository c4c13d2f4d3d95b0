"""Test vectors for processors/multivariate: NannyML 0.13's data reconstruction
drift on a synthetic reference and analysis set.

    python3 -m venv /tmp/mv && /tmp/mv/bin/pip install "nannyml==0.13.*" statsmodels "pandas<3"
    /tmp/mv/bin/python testdata/multivariate/gen_nannyml.py

Writes reference.csv, analysis.csv (the data, with missing values, a bool, a
categorical with a category the reference lacks) and nannyml.json (per
analysis chunk of 500 rows: NannyML's mean reconstruction error, sampling
error, thresholds and alert; the fitted number of components; the first 50
analysis rows' errors). Chunks 4-6 of the analysis break the correlation of
x1 and x2 and shift the categorical mix: they must alert.
"""
import json
import os

import numpy as np
import pandas as pd
import nannyml as nml

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261203)
CHUNK = 500


def frame(n, broken=False):
    z = rng.normal(size=n)
    x1 = 10 + 2 * z + rng.normal(scale=0.5, size=n)
    if broken:  # same marginals, correlation with x1 gone
        x2 = 5 - 1.5 * rng.normal(size=n) + rng.normal(scale=0.5, size=n)
    else:
        x2 = 5 - 1.5 * z + rng.normal(scale=0.5, size=n)
    x3 = rng.exponential(scale=3, size=n)
    x4 = 0.5 * x3 + rng.normal(size=n)
    cats = ["a", "b", "c", "d"]
    p = [0.4, 0.3, 0.2, 0.1] if not broken else [0.1, 0.2, 0.3, 0.4]
    c = rng.choice(cats, size=n, p=p).astype(object)
    flag = (z + rng.normal(scale=1, size=n)) > 0.3
    df = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "x4": x4, "color": c, "flag": flag.astype(object)})
    # missing values: ~3% of x1 and x3, ~2% of color, ~1% of flag
    for col, share in (("x1", 0.03), ("x3", 0.03), ("color", 0.02), ("flag", 0.01)):
        mask = rng.random(n) < share
        df.loc[mask, col] = np.nan if col.startswith("x") else None
    return df


reference = frame(5000)
parts = []
for i in range(10):
    parts.append(frame(CHUNK, broken=i in (4, 5, 6)))
analysis = pd.concat(parts, ignore_index=True)
# a category the reference never saw
analysis.loc[analysis.index[7 * CHUNK:7 * CHUNK + 40], "color"] = "zz"

def write_csv(df, path):
    d = df.copy()
    d["flag"] = d["flag"].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else ("true" if v else "false"))
    d.to_csv(path, index=False, float_format="%.17g", na_rep="")


# NannyML reads what Vigil reads: the committed files, as pandas loads them
# (an empty field is NaN, which SimpleImputer imputes; a None in an object
# column would be a category of its own to it).
write_csv(reference, os.path.join(HERE, "reference.csv"))
write_csv(analysis, os.path.join(HERE, "analysis.csv"))
reference = pd.read_csv(os.path.join(HERE, "reference.csv"))
analysis = pd.read_csv(os.path.join(HERE, "analysis.csv"))
assert reference["flag"].dtype == object and reference["color"].dtype == object

features = ["x1", "x2", "x3", "x4", "color", "flag"]
calc = nml.DataReconstructionDriftCalculator(column_names=features, chunk_size=CHUNK)
calc.fit(reference.copy())
res = calc.calculate(analysis.copy()).filter(period="analysis").to_df()


def rows(df):
    out = []
    for _, r in df.iterrows():
        out.append({
            "value": float(r[("reconstruction_error", "value")]),
            "sampling_error": float(r[("reconstruction_error", "sampling_error")]),
            "upper_threshold": None if pd.isna(r[("reconstruction_error", "upper_threshold")]) else float(r[("reconstruction_error", "upper_threshold")]),
            "lower_threshold": None if pd.isna(r[("reconstruction_error", "lower_threshold")]) else float(r[("reconstruction_error", "lower_threshold")]),
            "alert": bool(r[("reconstruction_error", "alert")]),
        })
    return out


# per-row errors of the first 50 analysis rows, with NannyML's own fitted steps
head = analysis.iloc[:50].copy()
head[calc.categorical_column_names] = calc._imputer_categorical.transform(head[calc.categorical_column_names])
head[calc.continuous_column_names] = calc._imputer_continuous.transform(head[calc.continuous_column_names])
x = calc._scaler.transform(calc._encoder.transform(head[features]).to_numpy())
row_errors = np.linalg.norm(x - calc._pca.inverse_transform(calc._pca.transform(x)), axis=1)

ref_res = calc.result.filter(period="reference").to_df()
out = {
    "nannyml": nml.__version__,
    "chunk_rows": CHUNK,
    "features": features,
    "n_components": int(calc._pca.n_components_),
    "explained": float(np.sum(calc._pca.explained_variance_ratio_)),
    "lower_threshold": None if calc.lower_threshold_value is None else float(calc.lower_threshold_value),
    "upper_threshold": float(calc.upper_threshold_value),
    "reference_chunks": [float(v) for v in ref_res[("reconstruction_error", "value")]],
    "chunks": rows(res),
    "row_errors": [float(v) for v in row_errors],
}


with open(os.path.join(HERE, "nannyml.json"), "w") as f:
    json.dump(out, f, indent=1)
print(json.dumps({k: v for k, v in out.items() if k not in ("row_errors", "reference_chunks")}, indent=1))
