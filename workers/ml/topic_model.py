"""The learned half of classify: per-topic logistic models over sentence vectors.

Rules know the words someone listed; the model reads a sentence encoder's vector of the whole
text (workers/encoder.py), so a story can reach its topic in words no rule lists. An entry
gets a topic when its rules reach the threshold or the model is sure enough
(`TopicModel.threshold`); the two are read side by side, never mixed. Training is offline
and small: `newsmon classify --train LABELLED.jsonl`.
"""

from __future__ import annotations

import numpy as np

from monitor.core.models import ENCODER_ID, TopicModel
from workers.ml.encoder import SentenceEncoder

# Chosen on replayed held-out parts (bench/README.md): 0.7 adds topics the rules miss
# without adding many false ones; weaker regularisation than 1/16 overfits the labelled lines.
THRESHOLD = 0.7
L2 = 1 / 16


class LearnedTopics:
    """A TopicModel made ready to score: one weight matrix over the sentence vectors."""

    def __init__(self, model: TopicModel, encoder: SentenceEncoder):
        self.model, self.encoder = model, encoder
        self.topics = list(model.weights)
        matrix = np.array([model.weights[t] for t in self.topics], dtype=np.float32)
        self.weights, self.bias = matrix[:, :-1], matrix[:, -1]

    def probabilities(self, text: str, vector: np.ndarray | None = None) -> dict[str, float]:
        """Each known topic's probability for a text (whose vector the caller may have)."""
        vector = self.encoder.vector(text) if vector is None else vector
        logits = self.weights @ vector + self.bias
        return dict(zip(self.topics, (1 / (1 + np.exp(-logits))).tolist(), strict=True))


def train(
    texts: list[str], labels: list[set[str]], topics: list[str], encoder: SentenceEncoder
) -> TopicModel:
    """One logistic model per topic that has both labelled and unlabelled lines."""
    features = np.vstack(
        [encoder.encode(texts[i : i + 32]) for i in range(0, len(texts), 32)]
    ).astype(np.float64)
    weights = {}
    for topic in topics:
        target = np.array([topic in label for label in labels], dtype=np.float64)
        if 0 < target.sum() < len(target):
            weights[topic] = tuple(round(float(w), 5) for w in _logistic(features, target))
    return TopicModel(ENCODER_ID, THRESHOLD, weights)


def _logistic(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Weights then bias of an L2-regularised logistic regression, by Newton's method.

    Each class weighs half of the loss, so a topic on one line in twenty is not drowned by
    the other nineteen. The bias is not regularised.
    """
    rows = np.hstack([features, np.ones((len(features), 1))])
    positives = target.sum()
    balance = np.where(
        target == 1, len(target) / (2 * positives), len(target) / (2 * (len(target) - positives))
    )
    penalty = np.full(rows.shape[1], L2)
    penalty[-1] = 0
    weights = np.zeros(rows.shape[1])
    for _ in range(50):
        predicted = 1 / (1 + np.exp(-rows @ weights))
        gradient = rows.T @ (balance * (predicted - target)) + penalty * weights
        curvature = (rows * (balance * predicted * (1 - predicted))[:, None]).T @ rows
        step = np.linalg.solve(curvature + np.diag(penalty) + 1e-9 * np.eye(len(weights)), gradient)
        weights -= step
        if np.abs(step).max() < 1e-6:
            break
    return weights
