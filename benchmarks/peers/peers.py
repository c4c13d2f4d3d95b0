"""Times the peers on the files gen.py wrote (benchmarks/peers/run.sh): Evidently's
DataDriftPreset on ref.parquet against cur.parquet, and whylogs' why.log on
wl.parquet. Prints one JSON object of seconds, versions and the drifted count."""
import json
import sys
import time

import pandas as pd


def evidently_drift(d):
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref = pd.read_parquet(f"{d}/ref.parquet")
    cur = pd.read_parquet(f"{d}/cur.parquet")
    began = time.perf_counter()
    result = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    took = time.perf_counter() - began
    drifted = None
    for m in result.dict().get("metrics", []):
        v = m.get("value")
        if isinstance(v, dict) and "count" in v and "DriftedColumnsCount" in str(m.get("metric_name", "")):
            drifted = int(v["count"])
    return {"evidently_version": evidently.__version__, "evidently_s": took, "evidently_drifted": drifted}


def whylogs_profile(d):
    import whylogs
    import whylogs as why

    df = pd.read_parquet(f"{d}/wl.parquet")
    began = time.perf_counter()
    why.log(df)
    return {"whylogs_version": whylogs.__version__, "whylogs_s": time.perf_counter() - began}


if __name__ == "__main__":
    out = {}
    out.update(whylogs_profile(sys.argv[1]))
    out.update(evidently_drift(sys.argv[1]))
    print(json.dumps(out))
