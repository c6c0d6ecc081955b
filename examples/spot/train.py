"""A deterministic training script that survives spot interruptions: seeded minibatch SGD for a
softmax classifier on scikit-learn's bundled digits, one checkpoint per epoch (when the platform's
advice says so), resumed from the last checkpoint on restart. Interrupted or not, it ends with the
same model, bit for bit.

    python train.py --epochs 12 --lr 0.5
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from strato import runtime


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    split = int(0.8 * len(y))
    return x[:split], y[:split], x[split:], y[split:]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def epoch(weights: np.ndarray, x: np.ndarray, y: np.ndarray, lr: float, seed: int, pause: float) -> np.ndarray:
    rng = np.random.default_rng(seed)  # one generator per epoch: a resumed epoch sees the same batches
    onehot = np.eye(10)[y]
    for batch in np.array_split(rng.permutation(len(y)), 20):
        xb = np.hstack([x[batch], np.ones((len(batch), 1))])
        grad = xb.T @ (softmax(xb @ weights) - onehot[batch]) / len(batch)
        weights = weights - lr * grad
        time.sleep(pause)  # stands in for real work, so interruptions land inside epochs
    return weights


def accuracy(weights: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float((np.argmax(np.hstack([x, np.ones((len(x), 1))]) @ weights, axis=1) == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--pause", type=float, default=0.015)
    parser.add_argument("--every_epoch", type=int, default=1)
    args = parser.parse_args()
    x_train, y_train, x_test, y_test = load()

    state = runtime.checkpoint_dir() / "state.npz"
    weights, start = np.zeros((65, 10)), 0
    if state.exists():
        saved = np.load(state)
        weights, start = saved["weights"], int(saved["epoch"])
        print(f"resumed from epoch {start}", flush=True)
    for number in range(start, args.epochs):
        weights = epoch(weights, x_train, y_train, args.lr, seed=number, pause=args.pause)
        runtime.report(step=number + 1, train_accuracy=accuracy(weights, x_train, y_train))
        if args.every_epoch or runtime.should_checkpoint():  # should_checkpoint(): the Young/Daly advice
            with runtime.checkpoint() as directory:
                tmp = directory / "state.tmp.npz"
                np.savez(tmp, weights=weights, epoch=number + 1)
                os.replace(tmp, state)  # a checkpoint is whole or absent
    test_accuracy = accuracy(weights, x_test, y_test)
    print(f"test_accuracy={test_accuracy:.6f}", flush=True)
    np.save(Path(os.environ["SM_MODEL_DIR"]) / "weights.npy", weights)
    (Path(os.environ["SM_MODEL_DIR"]) / "metrics.json").write_text(json.dumps({"test_accuracy": test_accuracy}))


if __name__ == "__main__":
    main()
