"""Sample data for tests, benchmarks and the demo: scikit-learn's breast-cancer set, and
one party's cut of a whole data set (a real job reads its own registered table instead,
`mpc_ledger.jobs.worker_bridge`)."""

from __future__ import annotations

import numpy as np
import torch

from mpc_ledger.mpc.train_spec import PartyData, TrainSpec

__all__ = ["breast_cancer_split", "labels_column", "party_data"]


def breast_cancer_split(seed: int = 0, rows: int | None = None) -> dict[str, np.ndarray]:
    """scikit-learn's breast-cancer data (shipped, no download), standardised, 75/25 split."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    features, labels = load_breast_cancer(return_X_y=True)
    if rows is not None:
        features, labels = features[:rows], labels[:rows]
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.25, random_state=seed, stratify=labels
    )
    scaler = StandardScaler().fit(x_train)
    return {
        "x_train": scaler.transform(x_train).astype(np.float32),
        "x_test": scaler.transform(x_test).astype(np.float32),
        "y_train": labels_column(y_train),
        "y_test": labels_column(y_test),
    }


def labels_column(labels: np.ndarray) -> np.ndarray:
    return labels.astype(np.float32).reshape(-1, 1)


def party_data(spec: TrainSpec, rank: int, full: dict[str, np.ndarray]) -> PartyData:
    """Cut one party's part out of a whole data set (test and benchmark harnesses only)."""

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    if spec.layout == "vertical":
        start = sum(spec.columns_per_rank[:rank])
        stop = start + spec.columns_per_rank[rank]
        own_labels = rank == spec.label_rank
        return PartyData(
            tensor(full["x_train"][:, start:stop]),
            tensor(full["y_train"]) if own_labels else None,
            tensor(full["x_test"][:, start:stop]),
            tensor(full["y_test"]) if own_labels else None,
        )
    train_start = sum(spec.train_rows_per_rank[:rank])
    train_stop = train_start + spec.train_rows_per_rank[rank]
    test_start = sum(spec.test_rows_per_rank[:rank])
    test_stop = test_start + spec.test_rows_per_rank[rank]
    return PartyData(
        tensor(full["x_train"][train_start:train_stop]),
        tensor(full["y_train"][train_start:train_stop]),
        tensor(full["x_test"][test_start:test_stop]),
        tensor(full["y_test"][test_start:test_stop]),
    )
