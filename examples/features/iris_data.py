"""Iris (bundled with scikit-learn, no download) as two lake tables: measurements taken twice per flower
(a rough first measurement, then a careful one a day later) and labels observed in between or after, so
a point-in-time join gives each label the measurement that existed when the label was recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_tables(t0: datetime | None = None, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measured at ``t0`` (default three days ago, so the online values are fresh within the 30 d TTL)."""
    t0 = t0 or datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    iris = load_iris(as_frame=True).frame
    iris.columns = [*COLUMNS, "species"]
    rng = np.random.default_rng(seed)
    n = len(iris)
    ids = np.arange(n)
    rough = iris[COLUMNS] + rng.normal(0, 0.3, size=(n, 4))
    measurements = pd.concat(
        [
            rough.assign(flower_id=ids, event_timestamp=t0),
            iris[COLUMNS].assign(flower_id=ids, event_timestamp=t0 + timedelta(days=1)),
        ],
        ignore_index=True,
    )[["flower_id", "event_timestamp", *COLUMNS]]
    seen = [t0 + timedelta(hours=12) if i % 2 else t0 + timedelta(days=2) for i in ids]
    labels = pd.DataFrame({"flower_id": ids, "event_timestamp": seen, "species": iris["species"]})
    return measurements, labels
