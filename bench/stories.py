"""Stories across outlets: does another outlet's report of an event join its story, and do
look-alike events stay apart?

    python bench/stories.py [--part outlets:tune] [--threshold 0.45 ...]

Replays one labelled part through the real dedupe step (sentence vectors on, a real Redis),
the first reports of each story before the others, and prints for each threshold of
`[dedupe] story_probability`: how many variants of each kind joined their story (`reword`:
another outlet's own report), look-alike pairs merged, and every other merge of two labelled
stories. Parts: `FILE:SPLIT` under tests/fixtures (labelled.jsonl, outlets.jsonl,
blind.jsonl); a held-out part is scored once.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import redis

from monitor.core.config import Settings
from monitor.core.models import Entry
from monitor.ops.redis_server import EmbeddedRedis, connect
from workers.ml import pair_model
from workers.ml.encoder import shipped
from workers.ml.evaluation import StoryEvaluation, evaluate_stories
from workers.pipeline.dedupe import Deduper
from workers.pipeline.normalise import normalise

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
WINDOW_SECONDS = 72 * 3600
NEAR_DUPLICATE = 0.6


def part(name: str) -> list[dict]:
    file, _, split = name.partition(":")
    rows = [json.loads(line) for line in (FIXTURES / f"{file}.jsonl").read_text().splitlines()]
    return [r for r in rows if not split or r["split"] == split]


def as_entry(row: dict) -> Entry:
    # Each row its own outlet: a reword comes from another feed than its original.
    feed = row["link"].split("/")[2]
    return normalise(
        Entry(
            id=Entry.make_id(feed, row["id"]),
            feed_name=feed,
            feed_url="",
            key=row["id"],
            title=row["title"],
            link=row["link"],
            summary=row["summary"],
        )
    )


def replay(
    connection: redis.Redis, rows: list[dict], vectors: list[np.ndarray], threshold: float
) -> tuple[StoryEvaluation, list[tuple[str, str]]]:
    """Rows (first reports first) through a fresh dedupe step, in slices as a fetch is
    processed: how they were grouped, and which look-alike pairs merged."""
    entries = [as_entry(r) for r in rows]
    deduper = Deduper(connection, WINDOW_SECONDS, NEAR_DUPLICATE, pair_model.shipped(threshold))
    checked = []
    for start in range(0, len(entries), 50):
        chunk = slice(start, start + 50)
        checked += deduper.check(entries[chunk], vectors[chunk])
    result = evaluate_stories(
        [(r["id"], r["story"], r["variant"], e.story_id)
         for r, (e, _) in zip(rows, checked, strict=True)]
    )  # fmt: skip
    lookalikes = {r["story"] for r in rows if r["kind"] == "lookalike"}
    return result, [(a, b) for a, b in result.false_merges if {a, b} <= lookalikes]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="outlets:tune")
    parser.add_argument(
        "--threshold", type=float, nargs="+", default=[Settings().story_probability]
    )
    args = parser.parse_args()
    rows = sorted(part(args.part), key=lambda r: r["variant"] != "original")
    started = time.perf_counter()
    vectors = [shipped().vector(as_entry(r).text) for r in rows]
    encode_ms = (time.perf_counter() - started) * 1000 / len(rows)
    print(f"{args.part}: {len(rows)} entries, encoder {encode_ms:.1f} ms per entry")
    with tempfile.TemporaryDirectory() as directory:
        server = EmbeddedRedis(Path(directory))
        connection = connect(server.start())
        try:
            for threshold in args.threshold:
                connection.flushdb()
                result, merged = replay(connection, rows, vectors, threshold)
                joined = ", ".join(
                    f"{kind} {got}/{total}" for kind, (got, total) in sorted(result.joined.items())
                )
                print(f"threshold {threshold}: joined {joined}")
                print(f"  look-alike pairs merged {len(merged)}, other false merges "
                      f"{len(result.false_merges) - len(merged)}")  # fmt: skip
                by_id = {r["story"]: r["title"] for r in rows if r["variant"] == "original"}
                for a, b in [*merged, *result.false_merges][:10]:
                    print(f"    {by_id.get(a, a)!r} + {by_id.get(b, b)!r}")
        finally:
            connection.close()
            server.stop()


if __name__ == "__main__":
    main()
