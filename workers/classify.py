"""Classify step: which topics an entry belongs to, by the rules of `topics.toml`.

Each topic has weighted terms, phrases to ignore, and a threshold. An entry gets every topic
whose matched terms add up to the threshold (multi-label). Each distinct term counts once.
Matching is on word sequences, so case, plurals ("drone strikes" = "drone strike"),
possessives and hyphenation ("front-line" = "front line" = "frontline") need no listing.
An ignored phrase ("economic health") masks the words it covers for its topic, so a term
inside it ("health") does not fire there; likewise a longer term hides the shorter terms
inside it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from dataclasses import dataclass, field

from monitor.models import Entry, Topic
from workers.text import words


@functools.lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """A light plural stemmer: enough to make "talks"/"talk" and "casualties"/"casualty" meet."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    return [stem(w) for w in words(text)]


@dataclass(frozen=True, slots=True)
class _Rule:
    words: tuple[str, ...]
    topic: int
    term: str
    weight: float
    ignore: bool


@dataclass
class TopicScore:
    topic: str
    score: float = 0.0
    threshold: float = 0.0
    matched: dict[str, float] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.matched) and self.score >= self.threshold


class Classifier:
    def __init__(self, topics: tuple[Topic, ...]):
        self.topics = topics
        self.rules_by_first_word: dict[str, list[_Rule]] = defaultdict(list)
        for index, topic in enumerate(topics):
            for term, weight in topic.terms.items():
                self._add(term, index, weight, ignore=False)
            for phrase in topic.ignore:
                self._add(phrase, index, 0.0, ignore=True)

    def _add(self, phrase: str, topic: int, weight: float, ignore: bool) -> None:
        words = tuple(tokens(phrase))
        variants = {words}
        if len(words) > 1:  # "front line" also matches "frontline"
            variants.add(("".join(words),))
        for variant in variants:
            self.rules_by_first_word[variant[0]].append(
                _Rule(variant, topic, phrase, weight, ignore)
            )

    def explain(self, text: str) -> list[TopicScore]:
        """Every topic's score for `text`, with the terms that fired and the phrases ignored."""
        words = tokens(text)
        hits: list[tuple[int, int, _Rule]] = []
        for start, word in enumerate(words):
            for rule in self.rules_by_first_word.get(word, ()):
                end = start + len(rule.words)
                if tuple(words[start:end]) == rule.words:
                    hits.append((start, end, rule))
        # Only ignored phrases and terms of several words can hide another hit.
        covers = defaultdict(list)
        for start, end, rule in hits:
            if rule.ignore or end - start > 1:
                covers[rule.topic].append((start, end, rule.ignore))
        scores = [TopicScore(t.name, threshold=t.threshold) for t in self.topics]
        for start, end, rule in hits:
            score = scores[rule.topic]
            if rule.ignore:
                if rule.term not in score.ignored:
                    score.ignored.append(rule.term)
                continue
            # Words covered by an ignored phrase, or by a longer term of the same topic
            # ("talk" inside "peace talks"), do not count again.
            covered = any(
                s <= start and end <= e and (ignore or e - s > end - start)
                for s, e, ignore in covers[rule.topic]
            )
            if not covered and rule.term not in score.matched:
                score.matched[rule.term] = rule.weight
                score.score += rule.weight
        return scores

    def topics_of(self, text: str) -> tuple[str, ...]:
        return tuple(s.topic for s in self.explain(text) if s.passed)

    def classify(self, entry: Entry) -> Entry:
        return dataclasses.replace(entry, topics=self.topics_of(entry.text))
