"""Learn the pair model (workers/ml/data/pair_model.json) on the real corpus' tune part.

    python bench/train_pairs.py --items /work/corpus-data/items.jsonl [--write]

Pairs, from the labels in bench/corpus/labels/ (tune part only; the held-out part is never
read here):
- one event: every same-event pair (English across outlets and within one, and across
  languages), but for English pairs whose facts conflict: dedupe keeps those apart before
  the model is asked (facts.conflicts);
- different events: every look-alike pair (one labelled bucket, different events), every
  cross-language pair of different events, and as many pairs of unrelated reports of the same
  two days as there are look-alikes (what the candidate search mostly finds).

Prints, 5-fold cross-validated by task (a task's pairs are all in one fold), the share of
same-event pairs joined at the threshold that merges at most 2% of English look-alikes, and
the same on every fold's own threshold; then fits on every tune pair and, with --write,
writes the model.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from datetime import datetime
from pathlib import Path

import numpy as np
from real import CYRILLIC, EVENT_TASKS, as_entry, labels, load_items, pairs

from monitor.core.models import ENCODER_ID
from workers.ml.encoder import shipped
from workers.ml.logistic import fit
from workers.ml.pair_model import SHIPPED, PairModel
from workers.pipeline.facts import WITHIN_SCRIPT, conflicts, report_facts
from workers.pipeline.meaning import FEATURES, Meaning, pair_features

L2 = 1.0
LOOKALIKE_MERGES = 0.02
FOLDS = 5


@dataclasses.dataclass
class Pair:
    ids: tuple[str, str]
    same: bool
    kind: str  # "english", "crosslang" or "unrelated"
    task: str


def tune_pairs(items: dict[str, dict], seed: int = 7) -> list[Pair]:
    tasks = [t for t in labels(*EVENT_TASKS) if items[t["events"][0][0]]["part"] == "tune"]
    found: dict[frozenset, Pair] = {}
    lookalikes = 0
    entries = {i: as_entry(items[i]) for t in tasks for g in t["events"] for i in g}
    facts = {i: report_facts(e.title, e.summary) for i, e in entries.items()}
    for task in tasks:
        same, apart = pairs(task["events"])
        bucket = task["task"].startswith("events-")
        for group, is_same in ((same, True), (apart, False)):
            for pair in group:
                a, b = sorted(pair)
                across = (items[a]["lang"] in CYRILLIC) != (items[b]["lang"] in CYRILLIC)
                if not is_same and not bucket and not across:
                    continue  # two English reports of a cross-language task: no look-alikes
                kind = "crosslang" if across else "english"
                if not across and conflicts(facts[a], facts[b]) & WITHIN_SCRIPT:
                    continue  # kept apart by their facts before the model is asked
                found.setdefault(pair, Pair((a, b), is_same, kind, task["task"]))
                lookalikes += not is_same and kind == "english"
    labelled = sorted({i for p in found.values() for i in p.ids})
    by_day: dict[str, list[str]] = {}
    for item_id in labelled:
        by_day.setdefault(items[item_id]["published_at"][:10], []).append(item_id)
    rng = random.Random(seed)
    days = sorted(by_day)
    while lookalikes > 0:
        day = rng.choice(days)
        if len(by_day[day]) < 2:
            continue
        a, b = sorted(rng.sample(by_day[day], 2))
        if frozenset((a, b)) not in found and items[a]["outlet"] != items[b]["outlet"]:
            found[frozenset((a, b))] = Pair((a, b), False, "unrelated", f"day-{day}")
            lookalikes -= 1
    return list(found.values())


def meanings(items: dict[str, dict], ids: list[str]) -> dict[str, Meaning]:
    entries = [as_entry(items[i]) for i in ids]
    encoder = shipped()
    vectors = np.vstack([encoder.encode([e.text for e in entries[i : i + 64]])
                         for i in range(0, len(entries), 64)])  # fmt: skip
    return {i: Meaning.of(e, v) for i, e, v in zip(ids, entries, vectors, strict=True)}


def matrix(pairs_: list[Pair], known: dict[str, Meaning]) -> np.ndarray:
    rows = []
    for pair in pairs_:
        a, b = known[pair.ids[0]], known[pair.ids[1]]
        rows.append(list(pair_features(a, b, conflicts(a.facts, b.facts)).values()))
    return np.array(rows)


def kind_weights(pairs_: list[Pair]) -> np.ndarray:
    """Each kind of different-event pair weighs as much, in all, as the look-alikes: the
    hard case is not drowned by the thousands of easy cross-language ones."""
    counts: dict[tuple[str, bool], int] = {}
    for p in pairs_:
        counts[p.kind, p.same] = counts.get((p.kind, p.same), 0) + 1
    lookalikes = counts[("english", False)]
    return np.array([1.0 if p.same else lookalikes / counts[p.kind, p.same] for p in pairs_])


def threshold_for(probabilities: np.ndarray, pairs_: list[Pair], kind: str = "english") -> float:
    """The lowest probability that merges at most LOOKALIKE_MERGES of the kind's pairs of
    different events (English look-alikes; cross-language pairs of one task)."""
    apart = np.sort([p for p, x in zip(probabilities, pairs_, strict=True)
                     if x.kind == kind and not x.same])[::-1]  # fmt: skip
    allowed = int(LOOKALIKE_MERGES * len(apart))
    return float(apart[allowed]) + 1e-6 if allowed < len(apart) else 0.5


def report(
    what: str, probabilities: np.ndarray, pairs_: list[Pair], threshold: float, across: float
) -> None:
    print(f"{what} (threshold {threshold:.3f}, across scripts {across:.3f}):")
    for kind, same in (("english", True), ("english", False), ("crosslang", True),
                       ("crosslang", False), ("unrelated", False)):  # fmt: skip
        bound = across if kind == "crosslang" else threshold
        chosen = [p >= bound for p, x in zip(probabilities, pairs_, strict=True)
                  if x.kind == kind and x.same == same]  # fmt: skip
        label = "same-event joined" if same else "different merged"
        print(f"  {kind:10} {label:18} {sum(chosen)}/{len(chosen)} "
              f"({sum(chosen) / max(len(chosen), 1):.3f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    items = load_items(args.items)
    pairs_ = tune_pairs(items)
    known = meanings(items, sorted({i for p in pairs_ for i in p.ids}))
    features = matrix(pairs_, known)
    target = np.array([p.same for p in pairs_], dtype=np.float64)
    weights = kind_weights(pairs_)
    print(f"{len(pairs_)} tune pairs, {int(target.sum())} of one event")

    tasks = sorted({p.task for p in pairs_})
    fold_of = {t: n % FOLDS for n, t in enumerate(random.Random(3).sample(tasks, len(tasks)))}
    folds = np.array([fold_of[p.task] for p in pairs_])
    held = np.zeros(len(pairs_))
    for fold in range(FOLDS):
        train = folds != fold
        coefficients = fit(features[train], target[train], L2, weights[train])
        held[~train] = 1 / (1 + np.exp(-(features[~train] @ coefficients[:-1] + coefficients[-1])))
    report("cross-validated", held, pairs_, threshold_for(held, pairs_),
           threshold_for(held, pairs_, "crosslang"))  # fmt: skip

    coefficients = fit(features, target, L2, weights)
    probabilities = 1 / (1 + np.exp(-(features @ coefficients[:-1] + coefficients[-1])))
    threshold = round(threshold_for(probabilities, pairs_), 3)
    across = round(threshold_for(probabilities, pairs_, "crosslang"), 3)
    report("fitted on every tune pair", probabilities, pairs_, threshold, across)
    model = PairModel(
        ENCODER_ID,
        tuple(FEATURES),
        tuple(float(c) for c in coefficients[:-1]),
        float(coefficients[-1]),
        threshold,
        across,
        f"{len(pairs_)} tune pairs of bench/corpus, {datetime.now():%Y-%m-%d}",
    )
    for name, weight in zip(model.features, model.weights, strict=True):
        print(f"  {name:22} {weight:+.3f}")
    print(f"  {'bias':22} {model.bias:+.3f}")
    if args.write:
        SHIPPED.parent.mkdir(exist_ok=True)
        SHIPPED.write_text(model.to_json() + "\n", encoding="utf-8")
        print(f"wrote {SHIPPED}")


if __name__ == "__main__":
    main()
