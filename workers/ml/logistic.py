"""L2-regularised logistic regression by Newton's method: small, exact and dependency-free,
for the few hundred features newsmon's models read (topics over sentence vectors, the pair
model over a pair's features)."""

from __future__ import annotations

import numpy as np


def fit(
    features: np.ndarray, target: np.ndarray, l2: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Coefficients then bias. Each class weighs half of the loss (times each row's own
    `weights`, when given), so a class on one row in twenty is not drowned by the other
    nineteen. The bias is not regularised."""
    rows = np.hstack([features, np.ones((len(features), 1))])
    own = np.ones(len(target)) if weights is None else weights
    positives = (own * target).sum()
    negatives = (own * (1 - target)).sum()
    total = own.sum()
    balance = own * np.where(target == 1, total / (2 * positives), total / (2 * negatives))
    penalty = np.full(rows.shape[1], l2)
    penalty[-1] = 0
    coefficients = np.zeros(rows.shape[1])
    for _ in range(50):
        predicted = 1 / (1 + np.exp(-rows @ coefficients))
        gradient = rows.T @ (balance * (predicted - target)) + penalty * coefficients
        curvature = (rows * (balance * predicted * (1 - predicted))[:, None]).T @ rows
        step = np.linalg.solve(
            curvature + np.diag(penalty) + 1e-9 * np.eye(len(coefficients)), gradient
        )
        coefficients -= step
        if np.abs(step).max() < 1e-6:
            break
    return coefficients
