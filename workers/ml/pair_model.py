"""The pair model: are two reports one event? A logistic model over a pair's features
(workers/pipeline/meaning.py), learned on real outlets' labelled pairs (bench/train_pairs.py)
and shipped as JSON beside this module. It gives a probability and the features that
decided it, so that an operator can audit every merge.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from monitor.core.models import ENCODER_ID

SHIPPED = Path(__file__).resolve().parent / "data" / "pair_model.json"
VERSION = 1


@dataclass(frozen=True, slots=True)
class PairModel:
    encoder: str  # the sentence encoder whose cosines it was trained on
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float  # the probability at which two reports are one event
    # The same for a translation (a report joining a story none of whose reports is in its
    # language): the cosines of two languages run lower. Once a story has a report in a
    # language, a report in it joins through one in it, so two reports of one language never
    # chain together through a translation.
    threshold_across_scripts: float
    trained_on: str = ""

    def joins(self, features: dict[str, float], translation: bool = False) -> float | None:
        """The probability that the pair is one event, if it reaches the threshold (across
        scripts, for a translation); else None."""
        probability = self.probability(features)
        bar = self.threshold_across_scripts if translation else self.threshold
        return probability if probability >= bar else None

    def probability(self, features: dict[str, float]) -> float:
        logit = self.bias + sum(
            w * features[name] for name, w in zip(self.features, self.weights, strict=True)
        )
        return 1 / (1 + math.exp(-logit))

    def deciding(self, features: dict[str, float], count: int = 3) -> dict[str, float]:
        """The features that moved the probability most, with their values."""
        pull = {
            name: abs(w * features[name])
            for name, w in zip(self.features, self.weights, strict=True)
        }
        top = sorted(pull, key=pull.__getitem__, reverse=True)[:count]
        return {name: round(features[name], 3) for name in top if pull[name]}

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": VERSION,
                "encoder": self.encoder,
                "trained_on": self.trained_on,
                "threshold": self.threshold,
                "threshold_across_scripts": self.threshold_across_scripts,
                "bias": round(self.bias, 5),
                "weights": {
                    name: round(w, 5) for name, w in zip(self.features, self.weights, strict=True)
                },
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> PairModel:
        data = json.loads(text)
        if data.get("version") != VERSION:
            raise ValueError(f"pair model version {data.get('version')!r}, expected {VERSION}")
        weights = data["weights"]
        return cls(
            data["encoder"],
            tuple(weights),
            tuple(float(w) for w in weights.values()),
            float(data["bias"]),
            float(data["threshold"]),
            float(data["threshold_across_scripts"]),
            data.get("trained_on", ""),
        )


def shipped(threshold: float | None = None) -> PairModel:
    """The pair model newsmon ships, joining at `threshold` when given (the operator's
    `[dedupe] story_probability`), else at the threshold it was trained for."""
    model = _load()
    return model if threshold is None else dataclasses.replace(model, threshold=threshold)


@functools.cache
def _load() -> PairModel:
    model = PairModel.from_json(SHIPPED.read_text(encoding="utf-8"))
    if model.encoder != ENCODER_ID:
        raise ValueError(f"{SHIPPED}: trained on {model.encoder!r}, newsmon runs {ENCODER_ID!r}")
    return model
