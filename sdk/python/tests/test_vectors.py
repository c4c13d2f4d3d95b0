"""Cross-language wire vectors: this SDK decodes what Go wrote, and what
it writes now is what is committed for Go's tests to decode
(schemas/wire/crosslang_test.go)."""

import json

import pytest

from vigil import _wire
from vectors import VECTOR_DIR, canonical, case_event, case_label, load_cases, python_vectors

CASES = load_cases()
EVENT_CASES = [c["case"] for c in CASES["events"]]
LABEL_CASES = [c["case"] for c in CASES["labels"]]
ALL_CASES = EVENT_CASES + LABEL_CASES


def go_file(name: str) -> bytes:
    return (VECTOR_DIR / "go" / name).read_bytes()


@pytest.mark.parametrize("case", ALL_CASES)
def test_go_arrow_decodes_to_what_python_writes(case):
    go_batch = _wire.decode_arrow(go_file(case + ".arrow"))
    got = canonical(go_batch)
    assert got == json.loads(go_file(case + ".canonical.json"))
    mine = canonical(_wire.decode_arrow(python_vectors()[case + ".arrow"]))
    assert mine == got
    # The schema, metadata included, is the same object in both languages.
    assert _wire.decode_arrow(python_vectors()[case + ".arrow"]).schema.equals(go_batch.schema, check_metadata=True)


@pytest.mark.parametrize("case", EVENT_CASES)
def test_go_json_events_are_byte_identical(case):
    c = next(c for c in CASES["events"] if c["case"] == case)
    lines = go_file(case + ".jsonl").split(b"\n")[:-1]
    assert len(lines) == len(c["events"])
    for line, v in zip(lines, c["events"]):
        assert _wire.event_json(case_event(v)) == line
        decoded = json.loads(line)
        assert decoded["event_id"] == v["event_id"]
        assert list(decoded["features"]) == [k for k, _ in v.get("features", [])]


@pytest.mark.parametrize("case", LABEL_CASES)
def test_go_json_labels_are_byte_identical(case):
    c = next(c for c in CASES["labels"] if c["case"] == case)
    lines = go_file(case + ".jsonl").split(b"\n")[:-1]
    assert [_wire.label_json(case_label(v)) for v in c["labels"]] == lines


@pytest.mark.parametrize("name", sorted(python_vectors()))
def test_committed_python_vectors_are_current(name):
    committed = (VECTOR_DIR / "python" / name).read_bytes()
    now = python_vectors()[name]
    if name.endswith(".arrow"):
        # Compressed bytes may differ between pyarrow/zstd builds: compare decoded.
        assert canonical(_wire.decode_arrow(committed)) == canonical(_wire.decode_arrow(now)), (
            f"{name}: regenerate with sdk/python/tests/make_vectors.py"
        )
        assert b"\x28\xb5\x2f\xfd" in committed, "ZSTD body compression"
    else:
        assert committed == now, f"{name}: regenerate with sdk/python/tests/make_vectors.py"


def test_type_mismatches_counted_like_go():
    batch = _wire.decode_arrow(go_file("edges.arrow"))
    assert batch.schema.metadata[b"vigil.type_mismatch.mixed"] == b"2"
    assert batch.schema.field("f.only_null").type == _wire.pa.float64()
    assert batch.column(batch.schema.get_field_index("f.only_null")).null_count == 3


@pytest.mark.parametrize(
    "value,want",
    [
        (0.0, "0"), (1.0, "1"), (12.5, "12.5"), (0.1, "0.1"), (1e16, "10000000000000000"),
        (1.5e-5, "0.000015"), (1e-6, "0.000001"), (9.9e-7, "9.9e-7"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
        (-2.5e-9, "-2.5e-9"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
        (float("nan"), "null"), (float("inf"), "null"),
    ],
)
def test_format_float_matches_go(value, want):
    assert _wire.format_float(value) == want


def test_vector_features_checked_like_go():
    np = pytest.importorskip("numpy")
    got = _wire.check_features({"emb": [1, 2.5], "e32": np.array([0.25, -1], dtype=np.float32), "x": 1.0})
    assert got == {"emb": (1.0, 2.5), "e32": (0.25, -1.0), "x": 1.0}
    for bad, reason in (
        ([], "empty vector"),
        ([1, "x"], "a vector holds numbers only"),
        ([1, True], "a vector holds numbers only"),
        ([1, float("nan")], "vector element 1 is not finite"),
        ([0.0] * 4097, "vector of 4097 values, more than 4096"),
    ):
        with pytest.raises(_wire.InvalidEventError, match=reason):
            _wire.check_features({"emb": bad})
    with pytest.raises(_wire.InvalidEventError, match="must not end in"):
        _wire.check_features({"emb[1]": [1.0]})


def test_frame_vectors_match_record():
    """A frame column of lists or arrays is a vector feature: the same
    Arrow column as record() builds for the same vectors (null rows
    missing); rows of different lengths or non-finite items are refused."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    from vigil._frame import frame_batch

    vecs = [[0.5, -1.0, 2.0], None, [1.0, 2.0, 3.0]]
    kw = dict(score="s", label=None, value=None, probabilities=None, id="id", id_prefix="p-", event_time="t",
              latency_ms=None, segments=None, features=["emb", "x"])
    times = pd.to_datetime([1764151200000, 1764151200001, 1764151200002], unit="ms", utc=True)
    for col in (vecs, [None if v is None else np.array(v, dtype=np.float32) for v in vecs]):
        df = pd.DataFrame({"id": ["a", "b", "c"], "t": times, "s": [0.5, 0.5, 0.5], "emb": col, "x": [1.0, 2.0, 3.0]})
        got = frame_batch("m", "1", df, **kw)
        events = [
            _wire.Event(i, "m", "1", int(t.value), _wire.check_features({"emb": v, "x": x}), 0.5, None, None, None, 0, None)
            for i, t, v, x in zip(["a", "b", "c"], times, vecs, [1.0, 2.0, 3.0])
        ]
        want = _wire.events_record_batch(events)
        assert canonical(got) == canonical(want)
        assert got.schema.field("f.emb").type == _wire.pa.list_(_wire.pa.float64(), 3)
    for bad, reason in (
        ([[1.0, 2.0], [1.0]], "row 1: vector of 1 values where row 0 has 2"),
        ([[1.0, float("inf")], [1.0, 2.0]], "row 0: vector element 1 is not finite"),
        ([[1.0, 2.0], [float("nan"), 2.0]], "a vector holds a null"),
    ):
        df = pd.DataFrame({"id": ["a", "b"], "t": times[:2], "s": [0.5, 0.5], "emb": bad, "x": [1.0, 2.0]})
        with pytest.raises(_wire.InvalidEventError, match=reason):
            frame_batch("m", "1", df, **kw)
