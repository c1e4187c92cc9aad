"""The one word splitter that dedupe and classify share, so both see the same words."""

from __future__ import annotations

import re

THOUSANDS = re.compile(r"(?<=\d)[,.](?=\d{3}(?!\d))")  # "1,000th" too
POSSESSIVE = re.compile("['\u2019]s\\b")
NON_WORD = re.compile(r"[\W_]+")


def words(text: str) -> list[str]:
    """Lower-case words: "2,000" = "2000", possessives dropped, hyphens and punctuation split."""
    text = POSSESSIVE.sub("", THOUSANDS.sub("", text.lower()))
    return NON_WORD.sub(" ", text).split()
