"""What tells two alike reports apart as different events: the facts of a headline.

Two reports of one event may be worded in every way; two different events often share their
words ("strike on the port of A kills 3" a day before "strike on the port of B kills 5").
What differs then is a fact: a number, a place, a name, a stage ("first reading" / "second
reading"), an office ("the president" / "the prime minister"). Dedupe merges two texts only
when no fact of one headline is replaced by another of the same kind in the other.

A fact the other report leaves out is no conflict: outlets choose different details. So a
headline's fact only conflicts with the other report's headline when neither text holds the
other's fact, or when the two headlines are one template with one fact swapped.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path

from monitor.core.text import NON_WORD, words
from workers.pipeline.places import PLACE_OF

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")
CARDINALS = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
NUMBER_WORDS = {word: value for value, word in enumerate(CARDINALS, start=1)} | {
    word: 10 * value for value, word in enumerate(TENS, start=2)
}
SCALES = {"hundred": 100, "thousand": 1000}  # "nine hundred" = 900; "billion" stays a word
DAYS = frozenset(
    (
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    )
)  # fmt: skip  ("may" is a verb far more often than a month)
STAGES = frozenset({"first", "second", "third", "fourth", "fifth", "sixth", "final", "last"})
OFFICES = (
    "prime minister", "foreign minister", "defence minister", "defense minister",
    "finance minister", "energy minister", "health minister", "interior minister",
    "president", "chancellor", "speaker", "king", "pope",
)  # fmt: skip
# Words that name a state's people or language ("Ukrainian", "Polish") stand for the state
# alone; a capital or a city ("Paris", "Berlin") is a fact of its own too.
DEMONYM_ENDINGS = ("ian", "ish", "ese", "an", "ch", "ic", "i", "ak")
# Two headlines sharing this much of their other words are one template.
TEMPLATE_OVERLAP = 0.5
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
ENGLISH_WORDS = Path(__file__).resolve().parent / "data" / "english_words.txt"


@dataclass(frozen=True, slots=True)
class Facts:
    numbers: frozenset[str] = frozenset()
    places: frozenset[str] = frozenset()  # as the state or place they name ("Kyiv" = ukraine)
    names: frozenset[str] = frozenset()  # capitalised words: people, towns, days, bodies
    stages: frozenset[str] = frozenset()
    offices: frozenset[str] = frozenset()
    days: frozenset[str] = frozenset()  # weekdays and months

    def __or__(self, other: Facts) -> Facts:
        return Facts(*(getattr(self, f.name) | getattr(other, f.name) for f in fields(Facts)))

    def tokens(self) -> list[str]:
        """Every fact as "kind:value" ("places:kherson"), sorted: how dedupe stores and
        indexes them."""
        return sorted(f"{f.name}:{value}" for f in fields(Facts) for value in getattr(self, f.name))

    @classmethod
    def from_tokens(cls, tokens: list[str]) -> Facts:
        kinds: dict[str, set[str]] = {f.name: set() for f in fields(Facts)}
        for token in tokens:
            kind, _, value = token.partition(":")
            if kind in kinds:
                kinds[kind].add(value)
        return cls(**{kind: frozenset(values) for kind, values in kinds.items()})


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """One report's facts: of its headline, of its whole text, and the headline's other
    words (to tell a template)."""

    headline: Facts
    text: Facts
    template: frozenset[str]


def facts_of(title: str) -> Facts:
    """The facts of one headline (or one sentence). A headline in Title Case has every word
    capitalised, so there a name is a word that is no English word."""
    tokens = title.split()
    title_words = words(title)
    stages = {w for w in title_words if w in STAGES}
    numbers = {_number(n) for n in NUMBER.findall(title)}
    numbers.update(_spelled_numbers([w for w in title_words if w not in STAGES]))
    places = {PLACE_OF[w] for w in title_words if w in PLACE_OF}
    names = {w for w in title_words if _is_city(w)}
    if tokens and _is_name(tokens[0]):
        names.update(w for w in words(tokens[0]) if w not in PLACE_OF)
    days = {w for w in title_words if w in DAYS}
    capitalised = [t for t in tokens[1:] if t[:1].isupper() and not t.isupper()]
    if len(capitalised) * 2 > len(tokens) - 1:
        names.update(w for w in title_words[1:] if _unknown_word(w))
    else:
        # Only a token's capitalised parts are names: "Brazilian-made" names Brazil, not "made".
        parts = [part for token in capitalised for part in NON_WORD.split(token)]
        names.update(
            w
            for part in parts
            if part[:1].isupper()
            for w in words(part)
            if w not in PLACE_OF and w.removesuffix("s") not in PLACE_OF and w not in DAYS
        )
    joined = f" {' '.join(title_words)} "
    offices = {o for o in OFFICES if f" {o} " in joined}
    offices = {o for o in offices if not any(o != other and o in other for other in offices)}
    return Facts(
        frozenset(numbers),
        frozenset(places),
        frozenset(names),
        frozenset(stages),
        frozenset(offices),
        frozenset(days),
    )


def report_facts(title: str, summary: str) -> ReportFacts:
    headline = facts_of(title)
    text = headline
    for sentence in SENTENCE_END.split(summary):
        if sentence:
            text = text | facts_of(sentence)
    drop = {*headline.numbers, *headline.names, *headline.stages}
    template = frozenset(w for w in words(title) if w not in drop and w not in PLACE_OF)
    return ReportFacts(headline, text, template)


class Conflict(StrEnum):
    """A way two reports' facts disagree: each headline holds a fact of the kind that the
    other report's text lacks."""

    STAGE = "stage"  # "first reading" / "second reading"
    OFFICE = "office"  # "the president" / "the prime minister"
    DAY = "day"  # "Monday" / "Tuesday"
    PLACE = "place"  # "Izmail" / "Reni": known places
    NAME = "name"  # names that are no English word: towns newsmon does not know, surnames
    CAPITALISED = "capitalised"  # other capitalised words: "Republicans", "City", "Why"
    NUMBERS = "numbers"  # numbers more than a quarter apart: "27 drones" / "41 drones"
    COUNT = "count"  # numbers within a quarter: "eight killed" / "nine killed", an update
    TEMPLATE = "template"  # one headline template with a place, name or number swapped


# Between two reports in one script these keep them apart: look-alike events differ most
# often by one place, town or number, and joining a different event loses its news, where
# a missed join only sends one alert more. A capitalised word (outlets frame a headline in
# their own words) and a count (outlets update it) are evidence the pair model weighs.
# Across scripts places and names are spelled apart, so there only the rest counts.
WITHIN_SCRIPT = frozenset(
    {Conflict.STAGE, Conflict.OFFICE, Conflict.DAY, Conflict.PLACE, Conflict.NAME,
     Conflict.NUMBERS, Conflict.TEMPLATE}
)  # fmt: skip
ACROSS_SCRIPTS = frozenset({Conflict.STAGE, Conflict.OFFICE, Conflict.DAY})
# Two counts this close are one count updated ("at least eight" / "at least nine killed").
COUNT_RATIO = 0.75


def conflicts(a: ReportFacts, b: ReportFacts) -> frozenset[Conflict]:
    """Each way a fact of one headline is replaced by another of its kind in the other."""
    found = {
        conflict
        for conflict, kind in ((Conflict.STAGE, "stages"), (Conflict.OFFICE, "offices"),
                               (Conflict.DAY, "days"))
        if _swapped(getattr(a.headline, kind), getattr(b.headline, kind))
    }  # fmt: skip
    a_places = a.headline.places - _where(b.text)
    b_places = b.headline.places - _where(a.text)
    a_where, b_where = _where(a.headline) - _where(b.text), _where(b.headline) - _where(a.text)
    if a_places and b_places:
        found.add(Conflict.PLACE)
    elif _unknown(a_where) and _unknown(b_where):
        found.add(Conflict.NAME)
    elif a_where and b_where:
        found.add(Conflict.CAPITALISED)
    a_numbers, b_numbers = a.headline.numbers - b.text.numbers, b.headline.numbers - a.text.numbers
    close = _close(a_numbers, b_numbers)
    if a_numbers and b_numbers:
        found.add(Conflict.COUNT if close else Conflict.NUMBERS)
    same_template = (
        bool(a.template and b.template)
        and len(a.template & b.template) / len(a.template | b.template) >= TEMPLATE_OVERLAP
    )
    swapped_numbers = _swapped(a.headline.numbers, b.headline.numbers)
    if same_template and (swapped_numbers or _swapped(_where(a.headline), _where(b.headline))):
        found.add(Conflict.TEMPLATE)
    return frozenset(found)


def _unknown(names: frozenset[str]) -> frozenset[str]:
    """The names that are no English word ("Nikopol", "Patidar"; not "Why" or "City")."""
    return frozenset(n for n in names if _unknown_word(n))


def _close(a_numbers: frozenset[str], b_numbers: frozenset[str]) -> bool:
    """Every number of each set has one in the other within COUNT_RATIO of it."""

    def near(x: str, others: frozenset[str]) -> bool:
        try:
            value = float(x)
            return any(
                min(value, float(y)) >= COUNT_RATIO * max(value, float(y)) > 0 for y in others
            )
        except ValueError:
            return False

    return all(near(x, b_numbers) for x in a_numbers) and all(near(y, a_numbers) for y in b_numbers)


def _where(facts: Facts) -> frozenset[str]:
    """Places and names as one kind of fact: a town newsmon does not know is a name."""
    return facts.places | facts.names


def _is_name(token: str) -> bool:
    """A headline's first word is capitalised anyway: it is a name when it is no English
    word ("Izmail port hit ...", not "Drone hits ...")."""
    plain = words(token)
    return len(plain) == 1 and token[:1].isupper() and _unknown_word(plain[0])


def _unknown_word(word: str) -> bool:
    return word.isalpha() and word not in english_words() and word not in PLACE_OF


@functools.cache
def english_words() -> frozenset[str]:
    """About 22,000 common English words (data/english_words.txt, see data/NOTICE)."""
    return frozenset(ENGLISH_WORDS.read_text(encoding="utf-8").split())


def _swapped(x: frozenset[str], y: frozenset[str]) -> bool:
    return bool(x - y) and bool(y - x)


def _is_city(word: str) -> bool:
    return word in PLACE_OF and PLACE_OF[word] != word and not word.endswith(DEMONYM_ENDINGS)


def _number(text: str) -> str:
    """ "2,000" = "2000"; "6.5" stays 6.5, and "6,5" reads as it."""
    return text.replace(",", "") if THOUSANDS.fullmatch(text) else text.replace(",", ".")


def _spelled_numbers(title_words: list[str]) -> list[str]:
    """Numbers written in words, as digits: "forty-six" = "46", "nine hundred" = "900"."""
    numbers = []
    index = 0
    while index < len(title_words):
        word, following = title_words[index], title_words[index + 1 : index + 2]
        if word in NUMBER_WORDS:
            value = NUMBER_WORDS[word]
            if value >= 20 and following and NUMBER_WORDS.get(following[0], 10) < 10:
                value += NUMBER_WORDS[following[0]]
                index += 1
                following = title_words[index + 1 : index + 2]
            numbers.append(str(value * SCALES.get(following[0] if following else "", 1)))
        index += 1
    return numbers
