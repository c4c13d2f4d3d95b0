"""whylogs' one-line profile of the same frame (run by run.sh in a venv of
its own, since whylogs pins older dependencies)."""

import json
import sys
import time

import pandas as pd
import whylogs as why

df = pd.read_parquet(sys.argv[1])
features = df.drop(columns=["request_id"])  # what vigil records as features, plus the score
t0 = time.perf_counter()
why.log(features)
dt = time.perf_counter() - t0
print(json.dumps({"bench": "whylogs", "rows": len(df), "rows_per_s": len(df) / dt, "seconds": dt}))
