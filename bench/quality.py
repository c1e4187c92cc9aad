"""Topic and story quality on the labelled set, and the speed of dedupe and classify alone.

    python bench/quality.py [--split test|tune|all] [--file labelled|outlets|blind]

Reads tests/fixtures/labelled.jsonl (written for newsmon: the eight topics, off-topic news,
traps, duplicate variants and look-alike stories; `split` marks the held-out part). Prints
per-topic precision/recall/F1 and macro-F1 on the split's first versions, near-duplicate
recall per kind of variant, false merges, then dedupe state bytes per entry and entries/s
of the dedupe and classify steps alone on a larger synthetic stream.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline import synthetic_entries

from monitor.core.config import load_config
from monitor.core.models import Entry
from monitor.core.text import words
from monitor.ops.redis_server import EmbeddedRedis, connect
from workers.ml.evaluation import Evaluation, evaluate, evaluate_stories
from workers.pipeline.classify import Classifier, TopicScore, chosen
from workers.pipeline.dedupe import Deduper
from workers.pipeline.fingerprint import Doc, fingerprint, text_similarity
from workers.pipeline.normalise import normalise
from workers.pipeline.similarity import shingles, signature, similarity

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


def labelled(split: str, file: str = "labelled") -> list[dict]:
    text = (FIXTURES / f"{file}.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [r for r in rows if split == "all" or r["split"] == split]


def as_entry(row: dict) -> Entry:
    entry = Entry(
        id=Entry.make_id("labelled", row["id"]),
        feed_name="labelled",
        feed_url="https://example.org/labelled",
        key=row["id"],
        title=row["title"],
        link=row["link"],
        summary=row["summary"],
    )
    return normalise(entry)


def stream_order(rows: list[dict]) -> list[dict]:
    """As a live blog posts them: a headline alone first, then the stories, then the rest."""
    rank = {"headline": 0, "original": 1}
    return sorted(rows, key=lambda r: rank.get(r["variant"], 2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="test", help="test, tune, test2, blind, fresh or all")
    parser.add_argument(
        "--file", default="labelled", choices=["labelled", "outlets", "blind", "fresh"]
    )
    args = parser.parse_args()
    config = load_config(REPO / "config")
    classifier = Classifier(config.topics, config.topic_model)
    rows = labelled(args.split, args.file)

    firsts = [r for r in rows if r["variant"] == "original"]
    explained = [(r, classifier.explain(as_entry(r).text)) for r in firsts]

    def score(passes: Callable[[TopicScore], bool]) -> Evaluation:
        scored = [(r, set(r["topics"]), {s.topic for s in e if passes(s)}) for r, e in explained]
        return evaluate([t.name for t in config.topics], scored)

    names = [t.name for t in config.topics]
    result = evaluate(names, [(r, set(r["topics"]), set(chosen(e))) for r, e in explained])
    passed = score(lambda s: s.passed).macro_f1
    rules = score(lambda s: s.passed_by_rules).macro_f1
    model = score(lambda s: s.model is not None and s.model >= s.model_threshold).macro_f1
    print(f"topics on {len(firsts)} first versions ({args.split}):")
    for name, topic in result.topics.items():
        print(f"  {name:<13} P {topic.precision:.2f}  R {topic.recall:.2f}  F1 {topic.f1:.2f}")
    print(
        f"  macro-F1 {result.macro_f1:.3f} (every topic that passed {passed:.3f}, rules alone "
        f"{rules:.3f}, model alone {model:.3f})"
    )
    for miss in result.misses:
        print(f"  miss {miss['id']}: expected {miss['expected']} got {miss['got']}")

    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    server = EmbeddedRedis(tmp / "redis")
    connection = connect(server.start())
    deduper = Deduper(connection, 72 * 3600, config.settings.near_duplicate_similarity)
    ordered = stream_order(rows)
    checked = deduper.check([as_entry(r) for r in ordered])
    stories = evaluate_stories(
        [
            (r["id"], r["story"], r["variant"], e.story_id)
            for r, (e, _) in zip(ordered, checked, strict=True)
        ]
    )
    print(f"stories on {len(rows)} entries ({args.split}):")
    for kind, (joined, total) in sorted(stories.joined.items()):
        print(f"  {kind:<12} {joined}/{total}")
    print(f"  near-duplicate recall {stories.recall:.3f}; false merges {len(stories.false_merges)}")
    for miss in stories.missed:
        print(f"  not joined: {miss}")
    for a, b in stories.false_merges:
        print(f"  merged: {a} + {b}")
    compare_near_duplicate_methods(rows, config.settings.near_duplicate_similarity)

    connection.flushdb()
    entries = [normalise(e) for e in synthetic_entries(5000)]
    before = connection.info("memory")["used_memory"]
    started = time.perf_counter()
    for start in range(0, len(entries), 50):
        deduper.check(entries[start : start + 50])
    dedupe_rate = len(entries) / (time.perf_counter() - started)
    per_entry = (connection.info("memory")["used_memory"] - before) / len(entries)
    rates = {}
    for name, step in (("rules and model", classifier), ("rules alone", Classifier(config.topics))):
        started = time.perf_counter()
        for entry in entries:
            step.classify(entry)
        rates[name] = f"{len(entries) / (time.perf_counter() - started):,.0f}"
    print(
        f"{len(entries)} synthetic entries: dedupe {dedupe_rate:,.0f} entries/s, "
        f"classify {rates['rules and model']} entries/s ({rates['rules alone']} by rules alone), "
        f"dedupe state {per_entry:,.0f} bytes/entry"
    )
    server.stop()


def simhash(text: str) -> int:
    counts = [0] * 64
    tokens = words(text)
    for a, b in itertools.pairwise(tokens) if len(tokens) > 1 else [(t, "") for t in tokens]:
        h = int.from_bytes(hashlib.blake2b(f"{a} {b}".encode(), digest_size=8).digest(), "little")
        for bit in range(64):
            counts[bit] += 1 if h >> bit & 1 else -1
    return sum(1 << bit for bit in range(64) if counts[bit] > 0)


def compare_near_duplicate_methods(rows: list[dict], threshold: float) -> None:
    """MinHash (what dedupe uses) against SimHash on the same pairs: each near variant with
    its original (kinds the exact keys catch are left out), and each look-alike pair. A good
    method passes the first and not the second, before the headline-facts rule."""
    by_id = {r["id"]: as_entry(r) for r in rows}
    originals = {r["story"]: by_id[r["id"]] for r in rows if r["variant"] == "original"}
    near = [
        (by_id[r["id"]], originals[r["story"]])
        for r in rows
        if r["variant"] not in ("original", "tracking", "headline", "repeat")
    ]
    lookalikes = [
        (originals[r["story"]], originals[r["story"][:-1] + "b"])
        for r in rows
        if r["kind"] == "lookalike" and r["story"].endswith("a") and r["variant"] == "original"
    ]

    def minhash(a: Entry, b: Entry) -> bool:
        return (
            similarity(signature(shingles(words(a.text))), signature(shingles(words(b.text))))
            >= threshold
        )

    def used(a: Entry, b: Entry) -> bool:
        return text_similarity(fingerprint(a), Doc.of("", fingerprint(b))) >= threshold

    print(f"near-duplicate signal on {len(near)} variant pairs, {len(lookalikes)} look-alikes:")
    methods = [
        (f"MinHash >= {threshold}", minhash),
        (f"+ exact if short (used) >= {threshold}", used),
    ] + [
        (
            f"SimHash <= {d} bits",
            lambda a, b, d=d: (simhash(a.text) ^ simhash(b.text)).bit_count() <= d,
        )
        for d in (3, 6, 10)
    ]
    for name, same in methods:
        caught = sum(same(a, b) for a, b in near)
        confused = sum(same(a, b) for a, b in lookalikes)
        print(
            f"  {name:<32} variants {caught}/{len(near)}, look-alikes {confused}/{len(lookalikes)}"
        )


if __name__ == "__main__":
    main()
