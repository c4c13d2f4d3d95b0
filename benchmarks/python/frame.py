"""The benchmark frame, the same for vigil and whylogs: 1M rows, 20
feature columns (16 numeric, 3 categorical of cardinality 4/20/200, 1
bool), plus request id and score; made with a fixed seed and written once
as Parquet so both venvs read the very same frame."""

import sys

import numpy as np
import pandas as pd


def make(rows: int = 1_000_000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {f"num_{i:02d}": rng.normal(i, 1 + i / 4, rows) for i in range(16)}
    for name, card in (("cat_4", 4), ("cat_20", 20), ("cat_200", 200)):
        cols[name] = pd.Categorical(rng.integers(0, card, rows).astype(str))
    cols["flag"] = rng.random(rows) < 0.3
    df = pd.DataFrame(cols)
    df.insert(0, "request_id", pd.Series(np.arange(rows)).astype(str).radd("req-"))
    df["score"] = rng.random(rows)
    return df


if __name__ == "__main__":
    make(int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000).to_parquet(sys.argv[1])
