"""Classify step: which topics an entry belongs to, by the rules of `topics.toml`.

Each topic has weighted terms, phrases to ignore, and a threshold. An entry gets every topic
whose matched terms add up to the threshold (multi-label). Each distinct term counts once.
Matching is on word sequences, so case, inflections ("drone strikes" = "drone strike",
"evacuated" = "evacuate"), possessives and hyphenation ("front-line" = "front line" =
"frontline") need no listing.
A learned model (workers/topic_model.py), when `topic_model.json` is there, reads with the
rules: for a topic it knows, the rules' score adds to the model's evidence and the sum must
reach the topic's own threshold, so the model can pass a topic no listed term names and
veto a term that fires in a story about something else. A topic the model does not know
(one a user added without labelled lines) is decided by its rules alone.
An ignored phrase ("economic health") masks the words it covers for its topic, so a term
inside it ("health") does not fire there; likewise a longer term hides the shorter terms
inside it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from monitor.core.models import Entry, Topic, TopicModel
from monitor.core.text import words
from workers.ml.encoder import shipped
from workers.ml.topic_model import LearnedTopics, combined, rules_evidence

VOWEL = re.compile("[aeiouy]")
# A text is about its surest topic; a further topic must be more than mentioned: its rules
# twice over their threshold, or rules and model together this sure. Measured on the
# tuning parts (bench/README.md): macro-F1 0.936 -> 0.965 on other outlets' wording.
SECOND_TOPIC_RULES = 2.0
SECOND_TOPIC_COMBINED = 0.85


CYRILLIC = re.compile("[\u0400-\u04ff]")
# Russian and Ukrainian case, number and verb endings, longest first; a stem keeps at least
# CYRILLIC_STEM_LETTERS, so short words stay whole.
ENDINGS_OF_CYRILLIC_WORDS = (
    "иями ями ами ого его ому ему ыми ими ией ях ах ов ев ей ой ий ый ая яя ое ее ые ие ую "
    "юю ом ем ам ям ею ою ів їв ій ії ть ти а я о е ы и у ю і ї ь й"
)
CYRILLIC_ENDINGS = sorted(ENDINGS_OF_CYRILLIC_WORDS.split(), key=len, reverse=True)
CYRILLIC_STEM_LETTERS = 4


@functools.lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """A light inflection stemmer, so that a term written once matches its other forms.

    Plurals ("talks" = "talk", "casualties" = "casualty"), verb endings ("shelled" =
    "shelling" = "shell", "evacuated" = "evacuate", "planned" = "plan") and a final "e"
    come off, so "drones" and "drone" both become "dron"; Cyrillic words lose their case
    endings instead. Stems need not be words: terms and text go through the same function,
    so they meet.
    """
    if CYRILLIC.search(word):
        return _cyrillic_stem(word)
    if len(word) > 4 and word.endswith(("ies", "ied")):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for ending in ("ing", "ed"):
        base = word[: -len(ending)]
        if word.endswith(ending) and len(base) >= 3 and VOWEL.search(base):
            word = base[:-1] if base[-1] == base[-2] and base[-1] not in "aeioulsz" else base
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def _cyrillic_stem(word: str) -> str:
    """Russian or Ukrainian: a reflexive ending, then one inflection, come off
    ("переговорах" = "переговоры" = "переговор", "України" = "Україна")."""
    word = word.replace("ё", "е")  # Russian writes ё as е as often as not
    for reflexive in ("ся", "сь"):
        if word.endswith(reflexive) and len(word) - 2 >= CYRILLIC_STEM_LETTERS:
            word = word[:-2]
            break
    for ending in CYRILLIC_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= CYRILLIC_STEM_LETTERS:
            return word[: -len(ending)]
    return word


def _variants(phrase: str) -> set[tuple[str, ...]]:
    """The word sequences a phrase matches: "front line" also matches "frontline"."""
    plain = words(phrase)
    variants = {tuple(stem(w) for w in plain)}
    if len(plain) > 1:
        variants.add((stem("".join(plain)),))
    return variants


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
    model: float | None = None  # the learned model's probability, if it knows the topic
    model_threshold: float = 1.0  # what `combined` must reach, if the model knows the topic

    @property
    def passed_by_rules(self) -> bool:
        return bool(self.matched) and self.score >= self.threshold

    @property
    def evidence(self) -> float:
        return rules_evidence(self.score, self.threshold) if self.matched else 0.0

    @property
    def combined(self) -> float | None:
        """The model's probability with the rules' evidence added, if the model knows the topic."""
        return None if self.model is None else combined(self.model, self.evidence)

    @property
    def passed(self) -> bool:
        if self.model is None:
            return self.passed_by_rules
        return self.combined >= self.model_threshold

    @property
    def strength(self) -> float:
        """How sure: rules and model together, or the rules' evidence as a share of 2."""
        return self.evidence / 2 if self.model is None else self.combined

    @property
    def about(self) -> bool:
        """Passed clearly enough to be a second topic of a text, not just mentioned in it."""
        if self.model is None:
            return self.passed_by_rules and self.score >= SECOND_TOPIC_RULES * self.threshold
        return self.passed and self.combined >= SECOND_TOPIC_COMBINED


def chosen(scores: list[TopicScore]) -> tuple[str, ...]:
    """The topics a text gets: the surest that passed, then every other that it is about."""
    passed = sorted((s for s in scores if s.passed), key=lambda s: s.strength, reverse=True)
    kept = {s.topic for s in passed[:1]} | {s.topic for s in passed[1:] if s.about}
    return tuple(s.topic for s in scores if s.topic in kept)


class Classifier:
    def __init__(self, topics: tuple[Topic, ...], model: TopicModel | None = None):
        self.topics = topics
        self.model = LearnedTopics(model, shipped()) if model else None
        # Terms that stem alike ("wounded", "wounding") are one term, at the larger weight.
        rules: dict[tuple[tuple[str, ...], int, bool], _Rule] = {}
        for index, topic in enumerate(topics):
            phrases = [(term, weight, False) for term, weight in topic.terms.items()]
            phrases += [(phrase, 0.0, True) for phrase in topic.ignore]
            for phrase, weight, ignore in phrases:
                for variant in _variants(phrase):
                    key = (variant, index, ignore)
                    if key not in rules or abs(weight) > abs(rules[key].weight):
                        rules[key] = _Rule(variant, index, phrase, weight, ignore)
        self.rules_by_first_word: dict[str, list[_Rule]] = defaultdict(list)
        for rule in rules.values():
            self.rules_by_first_word[rule.words[0]].append(rule)

    def explain(self, text: str, vector: np.ndarray | None = None) -> list[TopicScore]:
        """Every topic's score for `text`, with the terms that fired and the phrases ignored.
        `vector` is the text's sentence vector, when the caller has it already."""
        plain = words(text)
        stems = [stem(w) for w in plain]
        hits: list[tuple[int, int, _Rule]] = []
        for start, word in enumerate(stems):
            for rule in self.rules_by_first_word.get(word, ()):
                end = start + len(rule.words)
                if tuple(stems[start:end]) == rule.words:
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
        if self.model:
            self._add_model_probabilities(text, vector, plain, scores, covers)
        return scores

    def _add_model_probabilities(
        self,
        text: str,
        vector: np.ndarray | None,
        plain: list[str],
        scores: list[TopicScore],
        covers: dict[int, list],
    ) -> None:
        """The model reads what the rules read: a topic's ignored phrases are not its text,
        so for that topic it reads the text's words without them."""
        probabilities = self.model.probabilities(text, vector)
        for index, score in enumerate(scores):
            ignored = [(start, end) for start, end, ignore in covers[index] if ignore]
            if ignored and score.topic in probabilities:
                kept = [w for i, w in enumerate(plain) if not any(s <= i < e for s, e in ignored)]
                probabilities[score.topic] = self.model.probabilities(" ".join(kept))[score.topic]
            if score.topic in probabilities:
                score.model = probabilities[score.topic]
                score.model_threshold = self.model.model.thresholds[score.topic]

    def topics_of(self, text: str, vector: np.ndarray | None = None) -> tuple[str, ...]:
        return chosen(self.explain(text, vector))

    def classify(self, entry: Entry, vector: np.ndarray | None = None) -> Entry:
        return dataclasses.replace(entry, topics=self.topics_of(entry.text, vector))
