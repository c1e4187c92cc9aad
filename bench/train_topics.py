"""Train the topic model on real outlets' text, or measure it by cross-validation.

    python bench/train_topics.py --items /work/corpus-data/items.jsonl
    python bench/train_topics.py --items /work/corpus-data/items.jsonl --cross-validate

Learns from the tune part's topic-labelled items (bench/corpus/labels/, English, Russian and
Ukrainian) and the `tune` lines of tests/fixtures/labelled.jsonl, and writes
config/topic_model.json: the weights and each topic's threshold, chosen on the real items by
cross-validation (folds by day, so that reports of one event stay in one fold). The held-out
part is never read. Only the learned weights are committed, never the outlets' text.

`--cross-validate` writes nothing: each fold of days is scored by a model trained, and its
thresholds chosen, on the other folds alone; it prints what bench/real.py prints, pooled
over the folds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from real import CYRILLIC, REPO, TOPIC_TASKS, _per_topic, _rate, as_entry, labels, load_items

from monitor.core.config import load_topics, save_topic_model
from monitor.core.models import Topic, TopicModel
from workers.ml.encoder import shipped
from workers.ml.evaluation import evaluate
from workers.ml.topic_model import FOLDS, train
from workers.pipeline.classify import Classifier

FIXTURES = REPO / "tests" / "fixtures" / "labelled.jsonl"
WRITTEN = -1  # the fold of a fixture line: learned from, never held out


class RememberedEncoder:
    """The shipped encoder, encoding each text once across the folds' trainings."""

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, shipped().encode(missing), strict=True))
        return np.array([self.vectors[t] for t in texts])


def real_lines(items_path: Path) -> list[dict]:
    """The tune part's topic-labelled items: text, language, topics and fold (by day)."""
    items = load_items(items_path)
    topics = {}
    for task in labels(*TOPIC_TASKS):
        topics.update(task.get("topics", {}))
    tune = [items[i] for i in topics if items[i]["part"] == "tune"]
    days = sorted({item["published_at"][:10] for item in tune})
    fold_of_day = {day: number % FOLDS for number, day in enumerate(days)}
    return [
        {
            "text": as_entry(item).text,
            "lang": item["lang"],
            "topics": set(topics[item["id"]]),
            "fold": fold_of_day[item["published_at"][:10]],
        }
        for item in tune
    ]


def fixture_lines() -> list[dict]:
    rows = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
    return [
        {
            "text": as_entry({**row, "outlet": "labelled"}).text,
            "lang": "written",
            "topics": set(row["topics"]),
            "fold": WRITTEN,
        }
        for row in rows
        if row["split"] == "tune" and row["variant"] == "original"
    ]


def trained(topics: tuple[Topic, ...], lines: list[dict], encoder: RememberedEncoder) -> TopicModel:
    rules = Classifier(topics)
    texts = [line["text"] for line in lines]
    evidence = [[s.evidence for s in rules.explain(text)] for text in texts]
    return train(
        texts,
        [line["topics"] for line in lines],
        [topic.name for topic in topics],
        encoder,
        evidence,
        [line["fold"] for line in lines],
    )


def cross_validate(topics: tuple[Topic, ...], lines: list[dict]) -> None:
    encoder = RememberedEncoder()
    scored = []
    for fold in range(FOLDS):
        model = trained(topics, [line for line in lines if line["fold"] != fold], encoder)
        classifier = Classifier(topics, model)
        for line in lines:
            if line["fold"] == fold:
                vector = encoder.encode([line["text"]])[0]
                got = set(classifier.topics_of(line["text"], vector))
                scored.append((line, line["topics"], got))
    names = [topic.name for topic in topics]
    for language, langs in (("en", ("en",)), ("ru/uk", CYRILLIC)):
        part = [s for s in scored if s[0]["lang"] in langs]
        result = evaluate(names, part).of_topics_seen()
        none = [s for s in part if not s[1]]
        print(
            f"topics (tune, {FOLDS}-fold cross-validated, {language}): {len(part)} items, "
            f"macro-F1 {result.macro_f1:.3f}"
        )
        _rate("  items of no topic given one", sum(bool(got) for _, _, got in none), none)
        _per_topic(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--cross-validate", action="store_true")
    args = parser.parse_args()
    config = REPO / "config"
    topics = load_topics(config)
    lines = real_lines(args.items) + fixture_lines()
    if args.cross_validate:
        cross_validate(topics, lines)
        return
    model = trained(topics, lines, RememberedEncoder())
    path = save_topic_model(config, model, "python bench/train_topics.py")
    print(f"wrote {path}: " + ", ".join(f"{t} {v:.2f}" for t, v in model.thresholds.items()))


if __name__ == "__main__":
    main()
