"""The commands that run the workers' own code in this process: `newsmon worker`, `newsmon
classify` (the workers' classifier on JSON lines, and its training and scoring) and
`newsmon secret`. With root.py, the only modules of monitor/ops that import `workers`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import redis

from monitor.core.config import (
    Config,
    ConfigError,
    load_topic_model,
    load_topics,
    save_topic_model,
)
from monitor.core.models import ENCODER_ID, Entry, Topic, TopicModel
from monitor.core.processes import process_name
from monitor.ops.admin import counted
from workers import runtime, worker
from workers.delivery.signing import new_secret
from workers.ml.encoder import shipped
from workers.ml.evaluation import evaluate
from workers.ml.topic_model import FOLDS, train
from workers.pipeline.classify import Classifier, TopicScore, chosen
from workers.pipeline.normalise import normalise


def run_worker(config: Config, connection: redis.Redis, burst: bool) -> int:
    """One RQ worker on newsmon's queues, its runtime built here once."""
    runtime.install(runtime.Runtime.build(config, connection))
    return worker.run(connection, process_name(), burst)


def print_secret(args: argparse.Namespace, config: None) -> int:
    print(new_secret())
    return 0


def classify(args: argparse.Namespace, directory: Path) -> int:
    """`newsmon classify`: topics for JSON lines on stdin, or --train, or --eval."""
    try:
        topics = load_topics(directory)
        if args.train:  # the model file being replaced need not be valid
            return _train(topics, args.train, directory)
        classifier = Classifier(topics, load_topic_model(directory, topics))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"newsmon: {problem}", file=sys.stderr)
        return 2
    if args.eval:
        return _evaluate(classifier, args.eval)
    bad_lines = 0
    for _, item in _json_lines(sys.stdin, "stdin"):
        if item is None:
            bad_lines += 1
            continue
        scores = classifier.explain(_text(item))
        item["topics"] = list(chosen(scores))
        if args.explain:
            item["explain"] = {
                s.topic: _explained(s) for s in scores if s.matched or s.ignored or s.passed
            }
        print(json.dumps(item, ensure_ascii=False), flush=False)
    sys.stdout.flush()
    return 1 if bad_lines else 0


def _explained(score: TopicScore) -> dict:
    explained = {
        "score": score.score,
        "threshold": score.threshold,
        "matched": score.matched,
        "ignored": score.ignored,
    }
    if score.model is not None:
        explained["model"] = round(score.model, 3)
        explained["combined"] = round(score.combined, 3)
        explained["model_threshold"] = score.model_threshold
    return explained


def _labelled(path: Path) -> list[dict]:
    """Lines of a labelled file, each with its 'topics' list; exits naming a bad line."""
    try:
        lines = list(_json_lines(path.open(encoding="utf-8"), str(path)))
    except OSError as exc:
        raise SystemExit(f"newsmon: {path}: {exc.strerror}") from None
    labelled = []
    for number, item in lines:
        if item is None:
            raise SystemExit(2)
        if not isinstance(item.get("topics"), list):
            raise SystemExit(f"newsmon: {path} line {number}: needs a 'topics' list, e.g. []")
        labelled.append(item)
    return labelled


def _train(topics: tuple[Topic, ...], path: Path, directory: Path) -> int:
    lines = _labelled(path)
    names = [topic.name for topic in topics]
    texts = [_text(item) for item in lines]
    rules = Classifier(topics)
    evidence = [[s.evidence for s in rules.explain(text)] for text in texts]
    folds = [i % FOLDS for i in range(len(lines))]  # thresholds are chosen on held-out lines
    fresh = train(texts, [set(item["topics"]) for item in lines], names, shipped(), evidence, folds)
    counts = {name: sum(name in item["topics"] for item in lines) for name in names}
    # A topic the model has learned keeps it until enough lines teach it again: a few lines
    # of one's own must not undo what was learned from many.
    before = _current_model(directory, topics)
    kept = {n for n in names if n in before.weights and counts[n] < FOLDS}
    learned = {n: before if n in kept else fresh for n in names if n in kept or n in fresh.weights}
    model = TopicModel(
        fresh.encoder,
        {n: source.thresholds[n] for n, source in learned.items()},
        {n: source.weights[n] for n, source in learned.items()},
    )
    output = save_topic_model(directory, model, f"newsmon classify --train {path.name}")
    for name in names:
        state = "rules only (needs labelled lines)"
        if name in kept:
            state = f"kept as learned before (retrain it from {FOLDS} labelled lines or more)"
        elif name in model.weights:
            state = f"learned, threshold {model.thresholds[name]:.2f}"
        print(f"{name:<16} {counts[name]:5d} labelled  {state}")
    print(f"wrote {output} from {counted(len(lines), 'line')}")
    return 0


def _current_model(directory: Path, topics: tuple[Topic, ...]) -> TopicModel:
    """The model being replaced; an empty one when there is none or it is not valid."""
    try:
        return load_topic_model(directory, topics) or TopicModel(ENCODER_ID, {}, {})
    except ConfigError:
        return TopicModel(ENCODER_ID, {}, {})


def _evaluate(classifier: Classifier, path: Path) -> int:
    labelled = [
        (item, set(item["topics"]), set(classifier.topics_of(_text(item))))
        for item in _labelled(path)
    ]
    names = [topic.name for topic in classifier.topics]
    result = evaluate(names, labelled)
    seen = result.of_topics_seen()  # a topic never labelled nor given is not measured
    print(f"{'topic':<16} {'precision':>9} {'recall':>7} {'f1':>6} {'labelled':>9}")
    for name, scores in result.topics.items():
        support = scores.true_positives + scores.false_negatives
        if name in seen.topics:
            figures = f"{scores.precision:9.3f} {scores.recall:7.3f} {scores.f1:6.3f}"
        else:
            figures = f"{'-':>9} {'-':>7} {'-':>6}"
        print(f"{name:<16} {figures} {support:9d}")
    print(
        f"macro-F1 {seen.macro_f1:.3f} over {counted(len(seen.topics), 'topic')} and "
        f"{counted(len(labelled), 'line')}, {len(result.misses)} missed"
    )
    for miss in result.misses:
        print(
            f"  miss {miss['id']}: expected {miss['expected']}, got {miss['got']}: "
            f"{miss['title'][:70]}"
        )
    return 0


def _json_lines(lines: Iterable[str], source: str) -> Iterator[tuple[int, dict | None]]:
    """(line number, object) per non-blank line; None, after saying why, for a bad line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            print(f"newsmon: {source} line {number}: {exc}", file=sys.stderr)
            item = None
        yield number, item


def _text(item: dict) -> str:
    """The text the workers would classify: normalised title and summary."""

    entry = Entry(
        id="",
        feed_name="",
        feed_url="",
        key="",
        link="",
        title=str(item.get("title") or ""),
        summary=str(item.get("summary") or ""),
    )
    return normalise(entry).text
