"""Stories and topics on real outlets' text: the corpus of bench/corpus/, labelled by readers who
saw nothing of newsmon's rules or model.

    python bench/real.py --items /work/corpus-data/items.jsonl [--part tune|heldout|all]

Needs the corpus built by bench/corpus/build.py (`--items`) and the labels in
bench/corpus/labels/. Prints, for the part (split by date, bench/corpus/tasks.py):
- stories: every labelled task's reports are replayed through the real dedupe step (shipped
  config, sentence vectors on, a real Redis) in the order they were published, one two-day
  window at a time; same-event pairs from different outlets joined into one story, look-alike
  pairs (one bucket, different events) merged, and the cross-language pairs joined;
- topics: the shipped rules and model on every topic-labelled item: macro-F1, each topic's
  precision and recall, and the share of items of no topic that were given one; English and
  Russian/Ukrainian apart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from datetime import datetime
from pathlib import Path

from corpus.tasks import part as part_of
from corpus.tasks import windows

from monitor.core.config import load_config
from monitor.core.models import Entry
from monitor.ops.redis_server import EmbeddedRedis, connect
from workers.ml import pair_model
from workers.ml.encoder import shipped
from workers.ml.evaluation import Evaluation, evaluate
from workers.pipeline.classify import Classifier
from workers.pipeline.dedupe import Deduper
from workers.pipeline.normalise import normalise

REPO = Path(__file__).resolve().parent.parent
LABELS = REPO / "bench" / "corpus" / "labels"
BATCH = 50  # entries per dedupe call, as a fetch is processed
CYRILLIC = ("ru", "uk")


def as_entry(item: dict) -> Entry:
    published = datetime.fromisoformat(item["published_at"]) if item.get("published_at") else None
    return normalise(
        Entry(
            id=Entry.make_id(item["outlet"], item["id"]),
            feed_name=item["outlet"],
            feed_url="",
            key=item["id"],
            title=item["title"],
            link=item["link"],
            summary=item["summary"],
            published=published,
        )
    )


def labels(*kinds: str) -> list[dict]:
    return [
        json.loads(path.read_text())
        for kind in kinds
        for path in sorted(LABELS.glob(f"{kind}-*.json"))
    ]


# Tasks that group reports into events (a bucket of look-alikes, or a cross-language one),
# and tasks that give items their topics.
EVENT_TASKS = ("events", "crosslang", "ukcross")
TOPIC_TASKS = ("topics", "uktopics", "crosslang", "ukcross")


def pairs(groups: list[list[str]]) -> tuple[set[frozenset], set[frozenset]]:
    """Same-event pairs (within a group) and look-alike pairs (across groups of one task)."""
    same = {frozenset(p) for g in groups for p in itertools.combinations(g, 2)}
    every = {frozenset(p) for p in itertools.combinations([i for g in groups for i in g], 2)}
    return same, every - same


def story_of(
    items: dict[str, dict], task_ids: set[str], probability: float | None
) -> dict[str, str]:
    """Each labelled report's story id, as the dedupe step gives it: the reports of one two-day
    window (the tasks' windows) in the order they were published, on a fresh Redis."""
    settings = load_config(REPO / "config").settings
    encoder = shipped()
    stories = {}
    with tempfile.TemporaryDirectory() as directory:
        server = EmbeddedRedis(Path(directory))
        connection = connect(server.start())
        try:
            for _, window in sorted(windows([items[i] for i in task_ids]).items()):
                connection.flushdb()
                deduper = Deduper(
                    connection,
                    settings.dedupe_window_seconds,
                    settings.near_duplicate_similarity,
                    pair_model.shipped(probability or settings.story_probability),
                )
                ordered = sorted(window, key=lambda i: (i["published_at"], i["id"]))
                entries = [as_entry(i) for i in ordered]
                vectors = [encoder.vector(e.text) for e in entries]
                for start in range(0, len(entries), BATCH):
                    chunk = slice(start, start + BATCH)
                    checked = deduper.check(entries[chunk], vectors[chunk])
                    for item, (entry, _) in zip(ordered[chunk], checked, strict=True):
                        stories[item["id"]] = entry.story_id
        finally:
            connection.close()
            server.stop()
    return stories


def score_stories(items: dict[str, dict], part: str, probability: float | None = None) -> None:
    tasks = [t for t in labels(*EVENT_TASKS) if _in_part(t, items, part)]
    same: set[frozenset] = set()
    lookalike: set[frozenset] = set()
    for task in tasks:
        s, d = pairs(task["events"])
        same |= s
        if task["task"].startswith("events-"):  # a cross-language task is no bucket of look-alikes
            lookalike |= d
    cross_outlet = lambda p: len({items[i]["outlet"] for i in p}) == 2  # noqa: E731
    cross_language = lambda p: len({items[i]["lang"] in CYRILLIC for i in p}) == 2  # noqa: E731
    english = lambda p: all(items[i]["lang"] == "en" for i in p)  # noqa: E731
    stories = story_of(items, {i for t in tasks for g in t["events"] for i in g}, probability)
    joined = lambda p: len({stories[i] for i in p}) == 1  # noqa: E731
    english_same = [p for p in same if cross_outlet(p) and english(p)]
    english_apart = [p for p in lookalike if cross_outlet(p) and english(p)]
    crossing = [p for p in same if cross_language(p)]
    print(f"stories ({part}): {len(tasks)} tasks")
    _rate("  same-event pairs across outlets joined", sum(map(joined, english_same)), english_same)
    _rate("  look-alike pairs merged", sum(map(joined, english_apart)), english_apart)
    _rate("  cross-language same-event pairs joined", sum(map(joined, crossing)), crossing)
    # Per report, as a reader sees it: a Russian or Ukrainian report joined a story holding
    # an English report of its event (however many stories the English reports are in).
    cyrillic = sorted({i for p in crossing for i in p if items[i]["lang"] in CYRILLIC})
    with_english = [
        i for i in cyrillic if any(joined(p) for p in crossing if i in p)
    ]  # fmt: skip
    _rate("  Russian/Ukrainian reports joined to an English report of their event",
          len(with_english), cyrillic)  # fmt: skip


def _rate(what: str, count: int, of: list) -> None:
    print(f"{what}: {count}/{len(of)} ({count / len(of) if of else 0:.3f})")


def score_topics(items: dict[str, dict], part: str) -> None:
    labelled = {}
    for task in labels(*TOPIC_TASKS):
        labelled.update(task.get("topics", {}))
    config = load_config(REPO / "config")
    classifier = Classifier(config.topics, config.topic_model)
    encoder = shipped()
    names = [t.name for t in config.topics]
    for language, langs in (("en", ("en",)), ("ru/uk", CYRILLIC)):
        chosen = [items[i] for i in labelled if items[i]["lang"] in langs and _part(items[i], part)]
        scored = []
        for item in chosen:
            text = as_entry(item).text
            got = set(classifier.topics_of(text, encoder.vector(text)))
            scored.append((item, set(labelled[item["id"]]), got))
        result = evaluate(names, scored).of_topics_seen()
        none = [s for s in scored if not s[1]]
        tagged = sum(bool(got) for _, _, got in none)
        print(f"topics ({part}, {language}): {len(scored)} items, macro-F1 {result.macro_f1:.3f}")
        _rate("  items of no topic given one", tagged, none)
        _per_topic(result)


def _per_topic(result: Evaluation) -> None:
    for name, r in result.topics.items():
        support = r.true_positives + r.false_negatives
        print(f"    {name:13} P {r.precision:.2f}  R {r.recall:.2f}  F1 {r.f1:.2f}  n={support}")


def _part(item: dict, part: str) -> bool:
    return part == "all" or item["part"] == part


def _in_part(task: dict, items: dict[str, dict], part: str) -> bool:
    first = next(i for g in task["events"] for i in g)
    return _part(items[first], part)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--part", default="tune", choices=["tune", "heldout", "all"])
    parser.add_argument("--only", choices=["stories", "topics"])
    parser.add_argument(
        "--story-probability", type=float, help="instead of [dedupe] story_probability"
    )
    args = parser.parse_args()
    items = load_items(args.items)
    if args.only != "topics":
        score_stories(items, args.part, args.story_probability)
    if args.only != "stories":
        score_topics(items, args.part)


def load_items(path: Path) -> dict[str, dict]:
    """The corpus by id, each item with its part (tune or heldout) by date."""
    items = {}
    for line in path.read_text().splitlines():
        item = json.loads(line)
        items[item["id"]] = {**item, "part": part_of(item)}
    return items


if __name__ == "__main__":
    main()
