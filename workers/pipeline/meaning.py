"""What the story check knows of a report, and what it compares between two of them.

Two reports of one event by different outlets share little wording, and by outlets writing
in Russian or Ukrainian none at all. What they share is meaning (the sentence vector), and
often facts (names, places, numbers). Each pair of reports is described by a few features,
`pair_features`; the pair model (workers/ml/pair_model.py) weighs them into the probability
that the two are one event, and names the features that decided it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from monitor.core.models import Entry
from workers.pipeline.facts import Conflict, ReportFacts, report_facts
from workers.pipeline.similarity import content_words, word_overlap

CYRILLIC = re.compile(r"[\u0400-\u04ff]")
UKRAINIAN_LETTERS = re.compile(r"[іїєґІЇЄҐ]")
# What each feature means, in the order the pair model's weights are stored.
FEATURES = {
    "cosine": "cosine of the two sentence vectors",
    "cosine_across_scripts": "the cosine again when one report is Cyrillic and one Latin",
    "word_overlap": "share of content words in common",
    "shared_facts": "log(1 + names, places and numbers both texts hold)",
    "capitalised_conflict": "each headline has a capitalised word the other text lacks",
    "count_updated": "each headline has a number the other lacks, within a quarter of it",
    "hours_apart": "log(1 + hours between the two reports)",
    "headline_only": "one of the two is a headline without a summary",
    "same_outlet": "both come from the same feed",
    "across_scripts": "one report is Cyrillic, the other Latin",
}


@dataclass(frozen=True, slots=True)
class Meaning:
    """A report as the story check compares it: its sentence vector (int8, unit length times
    127), its facts, the hashes of its content words, its feed, when it was published (unix
    time), whether it has a summary, and its language as newsmon tells them apart."""

    vector: bytes
    facts: ReportFacts
    words: tuple[int, ...]
    feed: str = ""
    at: float = 0.0
    summary: bool = True
    language: str = "latin"  # "latin" (English and others), "russian" or "ukrainian"

    @classmethod
    def of(cls, entry: Entry, vector: np.ndarray, facts: ReportFacts | None = None) -> Meaning:
        when = entry.published or entry.fetched
        return cls(
            quantise(vector),
            facts or report_facts(entry.title, entry.summary),
            content_words(entry.text),
            entry.feed_name,
            when.timestamp() if when else 0.0,
            bool(entry.summary.strip()),
            language_of(entry.text),
        )

    @property
    def cyrillic(self) -> bool:
        return self.language != "latin"

    def unit_vector(self) -> np.ndarray:
        vector = np.frombuffer(self.vector, dtype=np.int8).astype(np.float32)
        return vector / (float(np.linalg.norm(vector)) or 1.0)


def quantise(vector: np.ndarray) -> bytes:
    return np.clip(np.round(vector * 127), -127, 127).astype(np.int8).tobytes()


def language_of(text: str) -> str:
    """ "russian" or "ukrainian" when most of the text's letters are Cyrillic (Ukrainian by
    the letters Russian lacks: і, ї, є, ґ), else "latin"."""
    letters = sum(c.isalpha() for c in text)
    if not letters or len(CYRILLIC.findall(text)) * 2 <= letters:
        return "latin"
    return "ukrainian" if UKRAINIAN_LETTERS.search(text) else "russian"


def pair_features(a: Meaning, b: Meaning, found: frozenset[Conflict]) -> dict[str, float]:
    """The features of a pair of reports, by name (see FEATURES), given the conflicts of
    their facts (`facts.conflicts(a.facts, b.facts)`, which dedupe reads before asking)."""
    cosine = float(a.unit_vector() @ b.unit_vector())
    across = float(a.cyrillic != b.cyrillic)
    shared = set(a.facts.text.tokens()) & set(b.facts.text.tokens())
    hours = abs(a.at - b.at) / 3600 if a.at and b.at else 0.0
    return {
        "cosine": cosine,
        "cosine_across_scripts": cosine * across,
        "word_overlap": word_overlap(a.words, b.words),
        "shared_facts": math.log1p(len(shared)),
        "capitalised_conflict": float(Conflict.CAPITALISED in found),
        "count_updated": float(Conflict.COUNT in found),
        "hours_apart": math.log1p(hours),
        "headline_only": float(not (a.summary and b.summary)),
        "same_outlet": float(a.feed == b.feed),
        "across_scripts": across,
    }
