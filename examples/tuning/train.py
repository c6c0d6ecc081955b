"""A multi-layer perceptron on scikit-learn's bundled digits (no download), trained epoch by epoch with
``partial_fit``. After every epoch it reports the validation accuracy with ``strato.runtime.report``:
a tuning job's objective, and the intermediate values hyperband prunes on.

    python train.py --learning_rate_init 0.01 --alpha 0.0001 --hidden 64 --epochs 10

``--augment 1`` adds four copies of the training images shifted by one pixel (up, down, left, right):
five times the data per epoch, a little better accuracy (``benchmarks/tuning.py`` uses it).
"""

import argparse
import os

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier

from strato import runtime


def shifted(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The images and four copies moved by one pixel (8x8 images, zero fill)."""
    images = x.reshape(-1, 8, 8)
    copies = [images]
    for axis, step in ((1, 1), (1, -1), (2, 1), (2, -1)):
        moved = np.roll(images, step, axis=axis)
        edge = 0 if step == 1 else -1
        if axis == 1:
            moved[:, edge, :] = 0
        else:
            moved[:, :, edge] = 0
        copies.append(moved)
    return np.concatenate(copies).reshape(-1, 64), np.tile(y, len(copies))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate_init", type=float, default=1e-3)
    parser.add_argument("--alpha", type=float, default=1e-4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", type=int, default=0)
    args = parser.parse_args()

    digits = load_digits()
    x, y = digits.data / 16.0, digits.target
    order = np.random.default_rng(0).permutation(len(y))  # one fixed split for every trial
    x, y = x[order], y[order]
    split = int(0.75 * len(y))
    x_train, y_train = x[:split], y[:split]
    if args.augment:
        x_train, y_train = shifted(x_train, y_train)
    model = MLPClassifier(
        hidden_layer_sizes=(args.hidden,) * args.layers,
        learning_rate_init=args.learning_rate_init,
        alpha=args.alpha,
        batch_size=args.batch_size,
        random_state=args.seed,
    )
    classes = np.unique(y)
    for epoch in range(1, args.epochs + 1):
        model.partial_fit(x_train, y_train, classes=classes)
        accuracy = model.score(x[split:], y[split:])
        runtime.report(step=epoch, **{"validation:accuracy": accuracy, "train:loss": model.loss_})
        print(f"epoch {epoch}: validation accuracy {accuracy:.4f}, loss {model.loss_:.4f}", flush=True)
    joblib.dump(model, os.path.join(runtime.model_dir(), "model.joblib"))


if __name__ == "__main__":
    main()
