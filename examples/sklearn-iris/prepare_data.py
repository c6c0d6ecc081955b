"""Write scikit-learn's bundled iris data set as a CSV training channel (no download)."""

import sys
from pathlib import Path

from sklearn.datasets import load_iris


def write_iris(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    frame = load_iris(as_frame=True).frame
    path = directory / "iris.csv"
    frame.to_csv(path, index=False)
    return path


if __name__ == "__main__":
    print(write_iris(Path(sys.argv[1] if len(sys.argv) > 1 else "data/train")))
