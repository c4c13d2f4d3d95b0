"""Writes the peer comparison's data (benchmarks/peers/run.sh) into a directory:
ref.parquet and cur.parquet, ROWS x FEATURES seeded normals (cur shifts the even
features by 0.5 std), and wl.parquet, WL_ROWS x WL_FEATURES normals."""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def frame(rng, rows, features, shift):
    cols = {}
    for j in range(features):
        x = rng.standard_normal(rows) * (1 + j / 50) + j
        if shift and j % 2 == 0:
            x = x + 0.5 * (1 + j / 50)
        cols[f"x{j:03d}"] = x
    return pa.table(cols)


def main(out, rows, features, wl_rows, wl_features):
    rng = np.random.default_rng(14)
    pq.write_table(frame(rng, rows, features, False), f"{out}/ref.parquet")
    pq.write_table(frame(rng, rows, features, True), f"{out}/cur.parquet")
    pq.write_table(frame(rng, wl_rows, wl_features, False), f"{out}/wl.parquet")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:6]))
