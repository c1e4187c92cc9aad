"""What dedupe compares, as pure functions of text: canonical links, MinHash signatures of
word pairs, and content words. (The facts that tell two alike events apart are facts.py's.)
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

from monitor.core.text import words
from workers.pipeline.classify import stem

SLOTS = 64
TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|_hsenc|_hsmi|"
    r"cmpid|ocid|ncid|sr_share|at_\w+|ref|ref_src|smid|xtor)$",
    re.IGNORECASE,
)
MASK64 = (1 << 64) - 1


def canonical_link(url: str) -> str:
    """The link with tracking parameters, default ports, 'www.' and scheme differences removed.

    The fragment is kept: live blogs give each post the same page with its own anchor.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not TRACKING_PARAMS.match(k)
    )
    path = parts.path.rstrip("/") or "/"
    link = f"{host}{path}"
    if query:
        link += "?" + urlencode(query)
    if parts.fragment:
        link += "#" + parts.fragment
    return link


@functools.lru_cache(maxsize=50_000)
def _word_hash(word: str) -> int:
    # News vocabulary repeats, so each word is hashed once per worker, not once per shingle.
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


def _mix(h: int) -> int:
    """splitmix64's finaliser: spreads the bits of a combined hash over all 64."""
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK64
    return h ^ (h >> 31)


def shingles(tokens: list[str]) -> set[int]:
    """One 64-bit hash per word pair; per word for a text of one word."""
    hashes = [_word_hash(t) for t in tokens]
    pairs = {_mix((a * 0x9E3779B97F4A7C15 + b) & MASK64) for a, b in itertools.pairwise(hashes)}
    return pairs or set(hashes)


def signature(hashes: set[int]) -> tuple[int, ...]:
    """MinHash by one-permutation hashing of shingle hashes: the minimum kept per slot."""
    empty = 1 << 64
    slots = [empty] * SLOTS
    for h in hashes:
        slot, value = h % SLOTS, h // SLOTS
        if value < slots[slot]:
            slots[slot] = value
    if all(v == empty for v in slots):
        return (0,) * SLOTS
    # Densify: an empty slot borrows the nearest filled slot to its right, offset by the
    # distance, so that two similar texts still agree on it as often as on filled ones.
    result = []
    for i, value in enumerate(slots):
        distance = 0
        while value == empty:
            distance += 1
            value = slots[(i + distance) % SLOTS]
        result.append((value + distance * 0x9E3779B1) & 0xFFFFFFFF)
    return tuple(result)


def similarity(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Estimated Jaccard similarity of the two shingle sets."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / SLOTS


# Words that carry no content of their own; the rest, stemmed, is what two reports share.
FUNCTION_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "been", "by", "for", "from", "had", "has", "have",
    "he", "her", "his", "in", "into", "is", "it", "its", "of", "on", "or", "over", "said", "says",
    "she", "than", "that", "the", "their", "them", "they", "this", "to", "was", "were", "which",
    "who", "will", "with", "after", "amid", "about", "more", "new", "up", "out",
))  # fmt: skip


def content_words(text: str) -> tuple[int, ...]:
    """The stemmed content words of a text, as sorted 32-bit hashes."""
    kept = {stem(w) for w in words(text) if len(w) > 2 and w not in FUNCTION_WORDS}
    return tuple(sorted(_word_hash(w) & 0xFFFFFFFF for w in kept))


def word_overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Jaccard similarity of two sets of content words."""
    both = len(set(a) & set(b))
    return both / (len(a) + len(b) - both) if a or b else 0.0
