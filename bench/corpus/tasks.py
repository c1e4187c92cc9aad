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
labelled as well as those it finds. The split is by date: the last days of each span (HELD_OUT)
are held out, the rest is the tuning part.

`--round 1` (May and June) writes the three kinds above; `--round 2` (July and August) writes
`uktopics-NN.json` and `ukcross-NN.json`, the same two tasks for Ukrainian-language posts.
The labels in labels/ name items by id, so they stay valid whatever the tasks are drawn again.
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

# Two spans of days: the first (round 1 of labelling) in May and June, when English and
# Russian-language outlets were archived together; the second (round 2) in July and August,
# when a Ukrainian-language channel was too. The last days of each span are held out.
ROUNDS = {1: ("2026-05-18", "2026-06-14"), 2: ("2026-07-02", "2026-08-09")}
HELD_OUT = (("2026-06-05", "2026-06-14"), ("2026-07-24", "2026-08-09"))
WINDOW_DAYS = 2
BUCKET_MAX = 20
BUCKET_MIN_OUTLETS = 3
BUCKET_BAR = 0.12  # shares a few telling words with the seed
CLOSE_BAR = 0.3  # shares many
SEED = 20261206
# Words too common to tell one report from another.
COMMON_WORDS = (
    "the and but for with after before from over under how why what when who where are was "
    "were new more most first last live watch video photos analysis opinion news update says "
    "said report reports top will can could would may not this that these those its his her "
    "their our you she they all one two three day week year out into about amid against "
    "between during than then there here now just only also still has have had been being "
    "which while per get got some any other such very"
)
STOP = frozenset(COMMON_WORDS.split())
WAR = re.compile(r"Ukrain|Russia|Kremlin|Putin|Zelensk|Kyiv|Kiev|Moscow|Donbas|Crimea", re.I)


def day(item: dict) -> str:
    return item["published_at"][:10]


def card(item: dict) -> dict:
    fields = ("id", "outlet", "lang", "published_at", "title", "summary")
    return {**{key: item[key] for key in fields}, "part": part(item)}


def part(item: dict) -> str:
    return "heldout" if any(lo <= day(item) <= hi for lo, hi in HELD_OUT) else "tune"


def windows(items: list[dict]) -> dict[str, list[dict]]:
    """Items by two-day window, named by its first day; a window never straddles the start of
    a span or of a held-out part."""
    starts = sorted(
        datetime.fromisoformat(d)
        for d in [*(f for f, _ in ROUNDS.values()), *(f for f, _ in HELD_OUT)]
    )
    by_window: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        at = datetime.fromisoformat(day(item))
        base = max((s for s in starts if s <= at), default=starts[0])
        start = base + timedelta(days=(at - base).days // WINDOW_DAYS * WINDOW_DAYS)
        by_window[start.date().isoformat()].append(item)
    return by_window


def vectors(items: list[dict]) -> dict[str, dict[str, float]]:
    """TF-IDF of each item's headline and summary words, unit length."""
    words = {
        i["id"]: re.findall(r"[a-z0-9]{3,}", (i["title"] + " " + i["summary"]).lower())
        for i in items
    }
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
                if (
                    a["outlet"] != b["outlet"]
                    and (score := cosine(vector[a["id"]], vector[b["id"]])) >= BUCKET_BAR
                ):
                    near[a["id"]].append((score, b))
                    near[b["id"]].append((score, a))
        taken: set[str] = set()
        by_id = {i["id"]: i for i in members}
        for seed_id in sorted(near, key=lambda i: -sum(s >= CLOSE_BAR for s, _ in near[i])):
            if seed_id in taken:
                continue
            free = sorted(
                (pair for pair in near[seed_id] if pair[1]["id"] not in taken), key=lambda p: -p[0]
            )
            if sum(score >= CLOSE_BAR for score, _ in free) < 2:
                continue
            bucket = [by_id[seed_id], *(item for _, item in free[: BUCKET_MAX - 1])]
            if len({i["outlet"] for i in bucket}) < BUCKET_MIN_OUTLETS:
                continue
            taken.update(i["id"] for i in bucket)
            buckets.append(sorted(bucket, key=lambda i: i["published_at"]))
    return buckets


def crosslang_buckets(
    items: list[dict], rng: random.Random, languages: tuple[str, ...], most: int | None = None
) -> list[list[dict]]:
    """Per window: its reports in `languages` (`most` of them at random) beside as many
    English reports of the war, at least BUCKET_MAX."""
    buckets = []
    for _, members in sorted(windows(items).items()):
        cyrillic = [i for i in members if i["lang"] in languages]
        english = [i for i in members if i["lang"] == "en" and WAR.search(i["title"])]
        if cyrillic and english:
            if most is not None:
                rng.shuffle(cyrillic)
                cyrillic = cyrillic[:most]
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
    parser.add_argument("--round", type=int, choices=sorted(ROUNDS), default=1)
    options = parser.parse_args()
    first, last = ROUNDS[options.round]
    items = [
        item
        for line in options.items.read_text().splitlines()
        if first <= day(item := json.loads(line)) <= last
    ]
    rng = random.Random(SEED)
    options.out.mkdir(parents=True, exist_ok=True)
    if options.round == 1:
        kinds = {
            "topics": chunks(rng.sample(items, 1200), 100),
            "events": event_buckets(items),
            "crosslang": crosslang_buckets(items, rng, ("ru", "uk")),
        }
    else:  # the Ukrainian-language posts: their topics, and their English counterparts
        ukrainian = [i for i in items if i["lang"] == "uk"]
        kinds = {
            "uktopics": chunks(rng.sample(ukrainian, 400), 100),
            "ukcross": crosslang_buckets(items, rng, ("uk",), most=30),
        }
    for kind, groups in kinds.items():
        write(options.out, kind, groups)
        print(f"{kind}: {len(groups)} tasks, {sum(map(len, groups))} items")


def chunks(items: list[dict], size: int) -> list[list[dict]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


if __name__ == "__main__":
    main()
