#!/usr/bin/env python3
"""Write vectors.json: model-performance metrics computed by scikit-learn.

The Go tests in processors/performance (vectors_test.go) feed the same inputs
into performance.State and compare every metric. Run with a Python that has
numpy and scikit-learn (the file is written next to this script):

    python3 -m venv /tmp/perfvenv && /tmp/perfvenv/bin/pip install numpy scikit-learn
    /tmp/perfvenv/bin/python processors/performance/testdata/make_vectors.py

Undefined values (sklearn raises or warns and returns a convention) are written
as the string "NaN"; the Go side expects NaN for them. Where sklearn returns a
number with an "undefined" warning, the case records it under "sklearn_notes"
so the choice made in Go stays visible.
"""
import json
import math
import os
import platform
import warnings

import numpy as np
import sklearn
from sklearn import metrics as M

SEED = 20260924
EPS = float(np.finfo(np.float64).eps)


def num(x):
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return x


def nums(xs):
    return [num(x) for x in xs]


def nearest_rank(values, q):
    """The nearest-rank quantile stats.Sketch estimates (within 1%)."""
    v = sorted(values)
    rank = max(1, math.ceil(q * len(v)))
    return v[rank - 1]


def delays_out(delays):
    d = [max(0.0, x) for x in delays]
    return {"delay_p50": num(nearest_rank(d, 0.5)), "delay_p95": num(nearest_rank(d, 0.95))}


def binary_case(name, scores, labels, threshold=0.5, delays=None):
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    yp = (scores >= threshold).astype(np.int64)
    out = {"name": name, "threshold": threshold, "scores": nums(scores), "labels": [bool(v) for v in y]}
    tn, fp, fn, tp = M.confusion_matrix(y, yp, labels=[0, 1]).ravel()
    out.update(tp=int(tp), fp=int(fp), tn=int(tn), fn=int(fn))
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero_division warnings: the default still returns 0.0
        out["accuracy"] = num(M.accuracy_score(y, yp))
        out["precision"] = num(M.precision_score(y, yp, zero_division="warn"))
        out["recall"] = num(M.recall_score(y, yp, zero_division="warn"))
        out["f1"] = num(M.f1_score(y, yp, zero_division="warn"))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            out["roc_auc"] = num(M.roc_auc_score(y, scores))
        except ValueError as e:  # sklearn < 1.6 raises with one class
            out["roc_auc"] = "NaN"
            notes.append(f"roc_auc_score raises: {e}")
    if w:
        notes.append(f"roc_auc_score returns {out['roc_auc']!r} with warning {w[0].message}")
    if y.sum() == 0:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            ap = M.average_precision_score(y, scores)
        notes.append(f"average_precision_score returns {ap!r} with warning {w[0].message if w else None}; Go returns NaN")
        out["pr_auc"] = "NaN"
    else:
        out["pr_auc"] = num(M.average_precision_score(y, scores))
    out["log_loss"] = num(M.log_loss(y, scores, labels=[0, 1]))
    out["brier"] = num(M.brier_score_loss(y, scores, labels=[0, 1]))
    out["predicted_positive_rate"] = num(yp.mean())
    out["label_positive_rate"] = num(y.mean())
    if delays is not None:
        out["delays"] = nums(delays)
        out.update(delays_out(delays))
    if notes:
        out["sklearn_notes"] = notes
    return out


def multiclass_case(name, y_true, y_pred, prob_classes=None, probs=None):
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    out = {"name": name, "actual": list(y_true), "predicted": list(y_pred), "classes": labels}
    out["confusion"] = M.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    out["accuracy"] = num(M.accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, s = M.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division="warn")
        out["precision"], out["recall"], out["f1"] = nums(p), nums(r), nums(f)
        out["support"] = [int(v) for v in s]
        for avg in ("macro", "micro", "weighted"):
            p, r, f, _ = M.precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division="warn")
            out[avg] = {"precision": num(p), "recall": num(r), "f1": num(f)}
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        out["prob_classes"] = list(prob_classes)
        out["probs"] = [nums(row) for row in probs]
        # Columns of probs are in prob_classes order; sklearn wants sorted labels.
        order = np.argsort(np.asarray(prob_classes, dtype=object))
        out["log_loss"] = num(M.log_loss(y_true, probs[:, order], labels=sorted(prob_classes)))
    else:
        out["log_loss"] = "NaN"
    return out


def regression_case(name, pred, actual):
    pred = np.asarray(pred, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    out = {"name": name, "pred": nums(pred), "actual": nums(actual)}
    out["mae"] = num(M.mean_absolute_error(actual, pred))
    out["rmse"] = num(math.sqrt(M.mean_squared_error(actual, pred)))
    out["mape"] = num(M.mean_absolute_percentage_error(actual, pred))
    nz = actual != 0
    out["mape_nonzero"] = num(np.mean(np.abs(pred[nz] - actual[nz]) / np.abs(actual[nz])) if nz.any() else float("nan"))
    out["zero_labels"] = int((~nz).sum())
    out["r2"] = num(M.r2_score(actual, pred))  # force_finite=True: 1.0 or 0.0 for constant labels
    out["mean_error"] = num(np.mean(pred - actual))
    return out


def main():
    rng = np.random.default_rng(SEED)
    binary = []

    binary.append(binary_case(
        "hand_ties",
        [0.1, 0.4, 0.35, 0.8, 0.5, 0.5, 0.5, 0.9, 0.2, 0.65],
        [0, 0, 1, 1, 0, 1, 1, 1, 0, 0]))
    for n in (50, 1000, 4000):
        s = rng.random(n)
        y = (rng.random(n) < s).astype(int)
        binary.append(binary_case(f"uniform_n{n}", s, y, delays=rng.exponential(3600, n) - 60))
    s = np.round(rng.random(3000), 2)  # heavy ties
    y = (rng.random(3000) < 0.3 + 0.4 * s).astype(int)
    binary.append(binary_case("rounded_ties_n3000", s, y))
    s = rng.beta(2, 8, 5000)
    y = (rng.random(5000) < 0.05 + 0.3 * s).astype(int)
    binary.append(binary_case("imbalanced_n5000", s, y))
    s = np.concatenate([[0.0, 1.0, 0.3, 0.3, 1.0, 0.0], rng.random(200)])
    y = np.concatenate([[1, 0, 1, 0, 1, 0], rng.integers(0, 2, 200)])
    binary.append(binary_case("threshold_0.3_extremes", s, y, threshold=0.3))
    binary.append(binary_case("all_negative", rng.random(40), np.zeros(40, dtype=int)))
    binary.append(binary_case("all_positive", rng.random(40), np.ones(40, dtype=int)))

    multiclass = []
    cls3 = ["cat", "dog", "fox"]
    n = 300
    yt = rng.choice(cls3, n, p=[0.5, 0.3, 0.2])
    pr = rng.dirichlet([1, 1, 1], n)
    for i in range(n):  # make the probabilities informative
        pr[i, cls3.index(yt[i])] += 0.35
        pr[i] /= pr[i].sum()
    yp = [cls3[j] for j in pr.argmax(axis=1)]
    multiclass.append(multiclass_case("three_classes_probs", yt, yp, cls3, pr))

    cls5 = ["a", "b", "c", "d", "e"]  # model classes; "e" is never predicted
    n = 500
    yt = rng.choice(cls5, n, p=[0.3, 0.3, 0.2, 0.15, 0.05])
    prob_order = ["e", "c", "a", "d", "b"]  # not sorted on purpose
    pr = rng.dirichlet([0.5] * 5, n)
    yp = []
    for i in range(n):
        pr[i, prob_order.index(yt[i])] += 0.8
        pr[i] /= pr[i].sum()
        yp.append(prob_order[int(pr[i].argmax())])
    yp = ["d" if v == "e" else v for v in yp]
    multiclass.append(multiclass_case("five_classes_one_never_predicted", yt, yp, prob_order, pr))

    yt = rng.choice(["x", "y", "z"], 120)
    yp = rng.choice(["x", "y", "w"], 120)  # "w" is predicted, never actual; "z" never predicted
    multiclass.append(multiclass_case("predicted_only_class_no_probs", yt, yp))

    regression = []
    x = rng.normal(10, 3, 500)
    regression.append(regression_case("normal_n500", x + rng.normal(0.5, 1, 500), x))
    a = rng.normal(0, 2, 400)
    a[::10] = 0.0
    regression.append(regression_case("zero_labels_n400", a + rng.normal(0, 0.5, 400), a))
    regression.append(regression_case("constant_labels_imperfect", 3.0 + rng.normal(0, 1, 50), np.full(50, 3.0)))
    regression.append(regression_case("constant_labels_perfect", np.full(20, 3.0), np.full(20, 3.0)))
    a = 1e6 + rng.normal(0, 1e-2, 1000)
    regression.append(regression_case("large_offset_n1000", a + rng.normal(0, 1e-2, 1000), a))

    doc = {
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "seed": SEED,
        "binary": binary,
        "multiclass": multiclass,
        "regression": regression,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")
    # One case per line: reviewable diffs without a line per number.
    with open(path, "w") as f:
        f.write("{\n")
        for i, (key, value) in enumerate(doc.items()):
            f.write(f"{json.dumps(key)}: ")
            if isinstance(value, list):
                f.write("[\n" + ",\n".join(json.dumps(c, separators=(",", ":")) for c in value) + "\n]")
            else:
                f.write(json.dumps(value))
            f.write(",\n" if i < len(doc) - 1 else "\n}\n")


if __name__ == "__main__":
    main()
