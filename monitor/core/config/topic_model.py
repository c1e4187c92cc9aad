"""`topic_model.json`: the learned topic model `newsmon classify --train` writes beside the
rules, read back checked against the topics and the encoder newsmon runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monitor.core.config.reading import NUMBER, Problem, Reader, key_name
from monitor.core.models import DIMENSIONS, ENCODER_ID, Topic, TopicModel

TOPIC_MODEL = "topic_model.json"
TOPIC_MODEL_VERSION = 2
MODEL_WEIGHT = 1000.0


def save_topic_model(directory: Path, model: TopicModel, written_by: str) -> Path:
    """Write `topic_model.json` in the form `read_topic_model` reads; returns its path."""
    header = {
        "about": f"written by `{written_by}`; retrain, do not edit",
        "version": TOPIC_MODEL_VERSION,
        "encoder": model.encoder,
        "thresholds": model.thresholds,
    }
    # One line per topic keeps the file short and its diffs readable.
    head = [f" {json.dumps(key)}: {json.dumps(value)}," for key, value in header.items()]
    rows = [f"  {json.dumps(name)}: {json.dumps(list(w))}" for name, w in model.weights.items()]
    path = directory / TOPIC_MODEL
    path.write_text(
        "{\n" + "\n".join(head) + '\n "topics": {\n' + ",\n".join(rows) + "\n }\n}\n",
        encoding="utf-8",
    )
    return path


def read_topic_model(
    path: Path, topics: tuple[Topic, ...], problems: list[Problem]
) -> TopicModel | None:
    """The learned model beside the rules, if `newsmon classify --train` wrote one.

    Version 2 has a threshold per topic; a file without a version (version 1) has one
    threshold for every topic."""
    found_before = len(problems)
    hint = "retrain with `newsmon classify --train LABELLED.jsonl`, or delete the file"
    reader = Reader(path, problems, required=False, hint=hint)
    if not reader.found or len(problems) > found_before:
        return None
    reader.require(reader.data, "encoder", "", str, _encoder)
    version = reader.get(reader.data, "version", "", int, 1, _model_version)
    if len(problems) > found_before:  # a newer file's other keys would be misread
        return None
    table = reader.require(reader.data, "topics", "", dict, _mapping) or {}
    known = {t.name for t in topics}
    weights = {}
    for name in table:
        if name not in known:
            reader.problem(f"topics.{key_name(name)}", "is not a topic of topics.toml")
        elif values := reader.get(table, name, "topics.", list, check=_weights):
            weights[name] = tuple(float(v) for v in values)
    if version == 1:
        threshold = reader.require(reader.data, "threshold", "", NUMBER, _probability)
        thresholds = dict.fromkeys(weights, threshold)
    else:
        given = reader.require(reader.data, "thresholds", "", dict, _mapping) or {}
        for name in [n for n in weights if n not in given]:
            reader.problem(f"thresholds.{key_name(name)}", "is required for every topic; add it")
        thresholds = {
            n: reader.get(given, n, "thresholds.", NUMBER, check=_probability) for n in weights
        }
    if len(problems) > found_before:
        return None
    return TopicModel(ENCODER_ID, {n: float(t) for n, t in thresholds.items()}, weights)


def _encoder(value: str) -> str | None:
    return None if value == ENCODER_ID else f"trained on {value!r}, but newsmon runs {ENCODER_ID!r}"


def _model_version(value: int) -> str | None:
    return None if 1 <= value <= TOPIC_MODEL_VERSION else f"must be 1 or {TOPIC_MODEL_VERSION}"


def _probability(value: float) -> str | None:
    return None if 0 < value < 1 else "must be a probability between 0 and 1, e.g. 0.7"


def _mapping(value: dict[str, Any]) -> str | None:
    return None if value else "must map each topic to its weights"


def _weights(value: list[Any]) -> str | None:
    fits = len(value) == DIMENSIONS + 1 and all(
        isinstance(v, NUMBER) and not isinstance(v, bool) and abs(v) <= MODEL_WEIGHT for v in value
    )
    if fits:
        return None
    return f"must be {DIMENSIONS + 1} numbers, each from -{MODEL_WEIGHT:g} to {MODEL_WEIGHT:g}"
