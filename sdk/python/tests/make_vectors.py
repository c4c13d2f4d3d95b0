#!/usr/bin/env python3
"""Rewrite the Python side of the cross-language wire vectors
(testdata/wire/python) from testdata/wire/cases.json.

    deployments/local/python.sh path   # the venv's python
    $(deployments/local/python.sh path) sdk/python/tests/make_vectors.py

The Go side: go test ./schemas/wire -run TestCrossLanguage -update
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vectors import VECTOR_DIR, python_vectors  # noqa: E402


def main() -> None:
    out = VECTOR_DIR / "python"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(python_vectors().items()):
        (out / name).write_bytes(data)
        print(f"wrote {out / name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
