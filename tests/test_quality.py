"""Floors on the labelled set (tests/fixtures/labelled.jsonl): topic quality, stories.

The set was written for newsmon: the eight topics, off-topic news, traps (topic words in
other senses), duplicate variants and look-alike stories. Its `test` part was held out:
topics.toml was tuned, and topic_model.json trained, on the `tune` part only, and the floors
below are what the held-out part measured (bench/quality.py prints the full figures).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.core.config import load_config
from monitor.core.models import Entry
from tests.helpers import REPO, normalised_entry
from workers.ml.evaluation import evaluate, evaluate_stories
from workers.pipeline.classify import Classifier
from workers.pipeline.dedupe import Deduper

LABELLED = Path(__file__).parent / "fixtures" / "labelled.jsonl"
ROWS = [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]
VARIANT_KINDS = {
    "repeat", "tracking", "headline", "boilerplate", "longer", "numbers", "punctuation", "word",
}  # fmt: skip
# (split, macro-F1 floor): rules and model measured 0.921 on the held-out part, on its only
# run (0.892 on the part before); the tuning part (0.95) guards against config edits that
# undo what was tuned.
TOPIC_FLOORS = [("test", 0.88), ("tune", 0.90)]


def entry(row: dict) -> Entry:
    return normalised_entry(
        feed="labelled",
        key=row["id"],
        title=row["title"],
        summary=row["summary"],
        link=row["link"],
    )


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "config")


def test_the_labelled_set_covers_what_it_must():
    firsts = [r for r in ROWS if r["variant"] == "original"]
    assert len(ROWS) >= 150 and len(firsts) >= 150
    topics = {"diplomacy", "frontline", "health", "humanitarian", "politics", "energy",
              "migration", "culture"}  # fmt: skip
    for split in ("tune", "test"):
        part = [r for r in firsts if r["split"] == split]
        assert {t for r in part for t in r["topics"]} == topics, split
        assert {r["kind"] for r in part} == {"topical", "offtopic", "trap", "lookalike"}, split
        assert {r["variant"] for r in ROWS if r["split"] == split} - {"original"} == VARIANT_KINDS


@pytest.mark.parametrize(("split", "floor"), TOPIC_FLOORS)
def test_topic_macro_f1_floor(config, split, floor):
    classifier = Classifier(config.topics, config.topic_model)
    firsts = [r for r in ROWS if r["split"] == split and r["variant"] == "original"]
    scored = [(r, set(r["topics"]), set(classifier.topics_of(entry(r).text))) for r in firsts]
    result = evaluate([t.name for t in config.topics], scored)
    assert result.macro_f1 >= floor, [(m["id"], m["expected"], m["got"]) for m in result.misses]


@pytest.mark.parametrize("split", ["test", "tune"])
def test_every_variant_joins_its_story_and_no_look_alike_is_merged(config, connection, split):
    rows = [r for r in ROWS if r["split"] == split]
    # As a live blog posts them: a headline alone first, then the stories, then the rest.
    rows.sort(key=lambda r: {"headline": 0, "original": 1}.get(r["variant"], 2))
    deduper = Deduper(connection, 72 * 3600, config.settings.near_duplicate_similarity)
    checked = deduper.check([entry(r) for r in rows])
    result = evaluate_stories(
        [(r["id"], r["story"], r["variant"], e.story_id)
         for r, (e, _) in zip(rows, checked, strict=True)]
    )  # fmt: skip
    assert result.recall >= 0.98, result.missed
    assert result.false_merges == []
