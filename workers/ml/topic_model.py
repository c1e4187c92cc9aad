"""The learned half of classify: per-topic logistic models over sentence vectors.

Rules know the words someone listed; the model reads a sentence encoder's vector of the whole
text (workers/encoder.py), so a story can reach its topic in words no rule lists. For a topic
the model knows, rules and model are read together (`combined`): the rules' score adds to
the model's evidence, so a story in words no rule lists can pass on the model, and a term
that fires in a story the model reads as something else does not tag it alone. Each topic
has its own threshold on that combined probability, chosen by cross-validation when the
model is trained. Training is offline and small: `newsmon classify --train LABELLED.jsonl`.
"""

from __future__ import annotations

import math

import numpy as np

from monitor.core.models import ENCODER_ID, TopicModel
from workers.ml.encoder import SentenceEncoder
from workers.ml.logistic import fit

# Measured by cross-validation on real outlets' text (bench/README.md, "Topics on real
# text"): rules at their threshold count as this many log-odds for a topic, twice over it
# as twice as many; regularisation weaker than 1 overfits the labelled lines.
RULES_LOG_ODDS = 2.0
L2 = 1.0
# A topic's threshold is the one of best F1 whose precision reaches PRECISION_FLOOR on the
# lines held out in turn (the best F1 at all when none does). A topic with too few labelled
# lines to choose by keeps THRESHOLD.
PRECISION_FLOOR = 0.8
THRESHOLD = 0.7
FOLDS = 5
CANDIDATE_THRESHOLDS = np.round(np.arange(0.05, 0.99, 0.01), 2)


def rules_evidence(score: float, threshold: float) -> float:
    """How far a topic's rules got: their score as a multiple of their threshold, up to 2."""
    return min(max(score, 0.0) / threshold, 2.0)


def combined(probability: float, evidence: float) -> float:
    """The model's probability with the rules' evidence added to its log-odds."""
    probability = min(max(probability, 1e-9), 1 - 1e-9)
    log_odds = math.log(probability / (1 - probability)) + RULES_LOG_ODDS * evidence
    return 1 / (1 + math.exp(-log_odds))


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
    texts: list[str],
    labels: list[set[str]],
    topics: list[str],
    encoder: SentenceEncoder,
    evidence: list[list[float]],
    folds: list[int],
) -> TopicModel:
    """One logistic model per topic that has both labelled and unlabelled lines, and its
    threshold.

    `evidence[i, j]` is the rules' evidence for `topics[j]` on line i (`rules_evidence`).
    `folds[i]` is line i's part for cross-validation, 0 to FOLDS - 1; a line of fold -1 is
    learned from but never held out (to learn from written examples while choosing the
    thresholds on real text alone).
    """
    features = np.vstack(
        [encoder.encode(texts[i : i + 32]) for i in range(0, len(texts), 32)]
    ).astype(np.float64)
    targets = np.array([[topic in label for topic in topics] for label in labels], dtype=bool)
    evidence, folds = np.array(evidence, dtype=np.float64), np.array(folds)
    learned = [j for j, topic in enumerate(topics) if 0 < targets[:, j].sum() < len(labels)]
    weights, thresholds = {}, {}
    held_out = _held_out_scores(features, targets[:, learned], evidence[:, learned], folds)
    for column, j in enumerate(learned):
        target = targets[:, j].astype(np.float64)
        weights[topics[j]] = tuple(round(float(w), 5) for w in fit(features, target, L2))
        scored = folds >= 0
        thresholds[topics[j]] = _threshold(targets[scored, j], held_out[scored, column])
    return TopicModel(ENCODER_ID, thresholds, weights)


def _held_out_scores(
    features: np.ndarray, targets: np.ndarray, evidence: np.ndarray, folds: np.ndarray
) -> np.ndarray:
    """Each line's combined probability per topic from models that did not learn from it."""
    scores = np.zeros(targets.shape)
    for fold in range(FOLDS):
        held, learn = folds == fold, folds != fold
        for j in range(targets.shape[1]):
            if not held.any() or not 0 < targets[learn, j].sum() < learn.sum():
                continue
            weights = fit(features[learn], targets[learn, j].astype(np.float64), L2)
            logits = features[held] @ weights[:-1] + weights[-1]
            scores[held, j] = 1 / (1 + np.exp(-(logits + RULES_LOG_ODDS * evidence[held, j])))
    return scores


def _threshold(target: np.ndarray, scores: np.ndarray) -> float:
    """The threshold of best F1 at PRECISION_FLOOR or above, else of best F1."""
    if target.sum() < FOLDS:
        return THRESHOLD
    best, best_floored = (-1.0, THRESHOLD), (-1.0, None)
    for threshold in CANDIDATE_THRESHOLDS:
        tagged = scores >= threshold
        found = int((tagged & target).sum())
        f1 = 2 * found / (tagged.sum() + target.sum())
        best = max(best, (f1, float(threshold)))
        if found and found / tagged.sum() >= PRECISION_FLOOR:
            best_floored = max(best_floored, (f1, float(threshold)))
    return best_floored[1] if best_floored[1] is not None else best[1]
