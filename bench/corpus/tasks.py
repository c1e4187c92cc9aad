"""Labelling tasks over the corpus, for readers who see nothing of newsmon's rules or model.

    python bench/corpus/tasks.py --items /work/corpus-data/items.jsonl --out /work/corpus-data/tasks

Writes three kinds of task, each a JSON file of items (id, outlet, lang, time, title, summary):
- `topics-NN.json`: items drawn at random from the whole corpus (so items of no topic come
  in their natural share), to be given their topics by the guide in tests/fixtures/README.md.
- `events-NN.json`: a bucket of reports from several outlets within two days that share a
  named subject (a word in Title Case in the headline, e.g. "Gaza", "Modi"), to be grouped
  into events. Reports grouped together are same-event pairs; reports of one bucket in
  different groups are look-alike pairs (same subject, another event).
- `crosslang-NN.json`: the Russian- and Ukrainian-language reports of two days beside the
  English reports of those days that name Ukraine or Russia, grouped the same way.

Buckets come from words, not from newsmon's encoder, so that the pairs the model misses are
labelled as well as those it finds. The split is by date: items published before SPLIT_DAY
are the tuning part, the rest held out.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

SPLIT_DAY = "2026-06-05"  # items of this day and later are the held-out part
WINDOW_DAYS = 2
BUCKET_MAX = 20
BUCKET_MIN_OUTLETS = 3
BUCKET_BAR = 0.12  # shares a few telling words with the seed
CLOSE_BAR = 0.3  # shares many
SEED = 20261206
STOP = set(
    "the and but for with after before from over under how why what when who where are was "
    "were new more most first last live watch video photos analysis opinion news update says "
    "said report reports top will can could would may not this that these those its his her "
    "their our you she they all one two three day week year out into about amid against "
    "between during than then there here now just only also still has have had been being "
    "which while per get got some any other such very".split()
)
WAR = re.compile(r"Ukrain|Russia|Kremlin|Putin|Zelensk|Kyiv|Kiev|Moscow|Donbas|Crimea", re.I)


def day(item: dict) -> str:
    return item["published_at"][:10]


def card(item: dict) -> dict:
    fields = ("id", "outlet", "lang", "published_at", "title", "summary")
    return {**{key: item[key] for key in fields}, "part": part(item)}


def part(item: dict) -> str:
    return "heldout" if day(item) >= SPLIT_DAY else "tune"


def windows(items: list[dict]) -> dict[str, list[dict]]:
    """Items by two-day window, named by its first day; windows never straddle SPLIT_DAY."""
    first = datetime.fromisoformat(min(day(i) for i in items))
    split = datetime.fromisoformat(SPLIT_DAY)
    by_window: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        at = datetime.fromisoformat(day(item))
        base = split if at >= split else first
        start = base + timedelta(days=(at - base).days // WINDOW_DAYS * WINDOW_DAYS)
        by_window[start.date().isoformat()].append(item)
    return by_window


def vectors(items: list[dict]) -> dict[str, dict[str, float]]:
    """TF-IDF of each item's headline and summary words, unit length."""
    words = {i["id"]: re.findall(r"[a-z0-9]{3,}", (i["title"] + " " + i["summary"]).lower()) for i in items}
    frequency = Counter(w for ws in words.values() for w in set(ws) if w not in STOP)
    vectors = {}
    for item_id, ws in words.items():
        weights = {
            w: count * math.log(len(items) / frequency[w])
            for w, count in Counter(w for w in ws if w not in STOP).items()
        }
        norm = math.sqrt(sum(v * v for v in weights.values())) or 1.0
        vectors[item_id] = {w: v / norm for w, v in weights.items()}
    return vectors


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(w, 0.0) for w, v in a.items())


def event_buckets(items: list[dict]) -> list[list[dict]]:
    """Per window, greedily: the report with the most close reports from other outlets seeds a
    bucket of the reports that share words with it (a low bar, so that rewordings and
    look-alikes both come in)."""
    buckets = []
    for _, members in sorted(windows([i for i in items if i["lang"] == "en"]).items()):
        vector = vectors(members)
        near: dict[str, list[tuple[float, dict]]] = defaultdict(list)
        for n, a in enumerate(members):
            for b in members[n + 1 :]:
                if a["outlet"] != b["outlet"] and (score := cosine(vector[a["id"]], vector[b["id"]])) >= BUCKET_BAR:
                    near[a["id"]].append((score, b))
                    near[b["id"]].append((score, a))
        taken: set[str] = set()
        by_id = {i["id"]: i for i in members}
        for seed_id in sorted(near, key=lambda i: -sum(s >= CLOSE_BAR for s, _ in near[i])):
            if seed_id in taken:
                continue
            free = sorted((pair for pair in near[seed_id] if pair[1]["id"] not in taken), key=lambda p: -p[0])
            if sum(score >= CLOSE_BAR for score, _ in free) < 2:
                continue
            bucket = [by_id[seed_id], *(item for _, item in free[: BUCKET_MAX - 1])]
            if len({i["outlet"] for i in bucket}) < BUCKET_MIN_OUTLETS:
                continue
            taken.update(i["id"] for i in bucket)
            buckets.append(sorted(bucket, key=lambda i: i["published_at"]))
    return buckets


def crosslang_buckets(items: list[dict], rng: random.Random) -> list[list[dict]]:
    buckets = []
    for _, members in sorted(windows(items).items()):
        cyrillic = [i for i in members if i["lang"] in ("ru", "uk")]
        english = [i for i in members if i["lang"] == "en" and WAR.search(i["title"])]
        if cyrillic and english:
            rng.shuffle(english)
            bucket = cyrillic + english[: max(BUCKET_MAX, len(cyrillic))]
            buckets.append(sorted(bucket, key=lambda i: i["published_at"]))
    return buckets


def write(out: Path, kind: str, groups: list[list[dict]]) -> None:
    for number, group in enumerate(groups, 1):
        (out / f"{kind}-{number:03}.json").write_text(
            json.dumps(
                {"task": f"{kind}-{number:03}", "items": [card(i) for i in group]},
                ensure_ascii=False,
                indent=1,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--topic-items", type=int, default=1200)
    parser.add_argument("--topic-task-size", type=int, default=100)
    options = parser.parse_args()
    items = [json.loads(line) for line in options.items.read_text().splitlines()]
    rng = random.Random(SEED)
    options.out.mkdir(parents=True, exist_ok=True)
    sample = rng.sample(items, options.topic_items)
    size = options.topic_task_size
    write(options.out, "topics", [sample[i : i + size] for i in range(0, len(sample), size)])
    write(options.out, "events", event_buckets(items))
    write(options.out, "crosslang", crosslang_buckets(items, rng))
    for kind in ("topics", "events", "crosslang"):
        files = sorted(options.out.glob(f"{kind}-*.json"))
        count = sum(len(json.loads(f.read_text())["items"]) for f in files)
        print(f"{kind}: {len(files)} tasks, {count} items")


if __name__ == "__main__":
    main()
