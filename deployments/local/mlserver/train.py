"""Train a tiny scikit-learn classifier on the spot and write an MLServer model folder.

    python train.py DIR [--kafka BROKERS --input TOPIC --output TOPIC] [--http-port N --grpc-port N --metrics-port N]

DIR gets model.joblib (a LogisticRegression on 4 synthetic features, 3 classes,
trained in well under a second), model-settings.json (runtime
mlserver_sklearn.SKLearnModel, name "iris", version "v1") and settings.json
(ports, and the Kafka server when --kafka is given). Used by Vigil's
serving-stack test (cmd/vigil/mlserver_e2e_test.go).
"""

import argparse
import json
import os

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--kafka", default="")
    ap.add_argument("--input", default="mlserver-input")
    ap.add_argument("--output", default="mlserver-output")
    ap.add_argument("--http-port", type=int, default=8080)
    ap.add_argument("--grpc-port", type=int, default=8081)
    ap.add_argument("--metrics-port", type=int, default=8082)
    a = ap.parse_args()

    rng = np.random.default_rng(7)
    centers = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.5, 2.0]])
    y = np.repeat(np.arange(3), 50)
    x = centers[y] + rng.normal(scale=0.3, size=(150, 4))
    model = LogisticRegression(max_iter=500).fit(x, y)

    os.makedirs(a.dir, exist_ok=True)
    joblib.dump(model, os.path.join(a.dir, "model.joblib"))
    with open(os.path.join(a.dir, "model-settings.json"), "w") as f:
        json.dump({
            "name": "iris",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"},
        }, f)
    settings = {
        "http_port": a.http_port,
        "grpc_port": a.grpc_port,
        "metrics_port": a.metrics_port,
        "parallel_workers": 0,
    }
    if a.kafka:
        settings.update({
            "kafka_enabled": True,
            "kafka_servers": a.kafka,
            "kafka_topic_input": a.input,
            "kafka_topic_output": a.output,
        })
    with open(os.path.join(a.dir, "settings.json"), "w") as f:
        json.dump(settings, f)
    print(json.dumps({"classes": model.classes_.tolist(), "train_accuracy": float(model.score(x, y))}))


if __name__ == "__main__":
    main()
