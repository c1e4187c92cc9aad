"""What dedupe compares of an entry and keeps of it for the window.

An entry's fingerprint: the digests an exact repeat shares (its canonical link, its text,
its headline), a MinHash signature of its word pairs with its LSH band keys, a short text's
word pairs, its facts (read once, for the near-duplicate check and the story check alike)
and, when the semantic layer read it, its meaning. What dedupe keeps of it, a doc, is one
Redis string per entry: versioned JSON, then binary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from monitor.core import keys
from monitor.core.models import Entry
from monitor.core.text import words
from workers.pipeline.facts import Facts, ReportFacts, report_facts
from workers.pipeline.meaning import Meaning
from workers.pipeline.similarity import SLOTS, canonical_link, shingles, signature, similarity

BANDS = 16
ROWS = SLOTS // BANDS
MIN_TITLE_WORDS = 5  # shorter headlines ("Live updates", "Morning briefing") say too little
DOC_VERSION = 3
SIGNATURE_FORMAT = f"<{SLOTS}I"


class DuplicateReason(StrEnum):
    """What an entry shares with the earlier one it repeats: the first three are also the
    kinds of exact key (and name them in Redis)."""

    LINK = "link"
    TEXT = "text"
    TITLE = "title"
    NEAR = "near"  # near-identical text
    STORY = "story"  # another report of the same event, in other words


@dataclass(frozen=True, slots=True)
class Fingerprint:
    exact: tuple[tuple[DuplicateReason, str], ...]  # (kind, digest): link, text, title
    signature: tuple[int, ...]
    shingles: tuple[int, ...]  # a short text's word pairs (32-bit hashes); () for a long one
    facts: ReportFacts  # read once, for the near-duplicate check and the story check alike
    keys: tuple[str, ...]  # the Redis keys: one per exact kind, then one per LSH band
    meaning: Meaning | None = None
    fact_keys: tuple[str, ...] = ()  # the lists of the story index, one per fact of the text

    def with_meaning(self, entry: Entry, vector: np.ndarray) -> Fingerprint:
        """The fingerprint with the entry's meaning, read from its sentence vector."""
        meaning = Meaning.of(entry, vector, self.facts)
        fact_keys = tuple(keys.dedupe_fact(token) for token in self.facts.text.tokens())
        return dataclasses.replace(self, meaning=meaning, fact_keys=fact_keys)


def text_similarity(a: Fingerprint | Doc, b: Doc) -> float:
    """Jaccard similarity: exact when both texts are short, where an estimate from a few
    filled slots is noisy (one changed word in 17 can read as 0.59 instead of 0.76)."""
    if a.shingles and b.shingles:
        both = len(set(a.shingles) & set(b.shingles))
        return both / (len(a.shingles) + len(b.shingles) - both)
    return similarity(a.signature, b.signature)


def exact_digests(entry: Entry, text_words: list[str]) -> list[tuple[DuplicateReason, str]]:
    """What an exact repeat shares: its canonical link, its text (`text_words`, its words),
    its headline (if long enough to say something)."""
    title_words = words(entry.title)
    exact = []
    if entry.link:
        exact.append((DuplicateReason.LINK, _digest(canonical_link(entry.link).encode())))
    exact.append((DuplicateReason.TEXT, _digest(" ".join(text_words).encode())))
    if len(title_words) >= MIN_TITLE_WORDS:
        exact.append((DuplicateReason.TITLE, _digest(" ".join(title_words).encode())))
    return exact


def fingerprint(entry: Entry) -> Fingerprint:
    """What the entry's words say (its meaning is added by `Fingerprint.with_meaning`)."""
    text_words = words(entry.text)
    exact = exact_digests(entry, text_words)
    facts = report_facts(entry.title, entry.summary)
    hashes = shingles(text_words)
    sig = signature(hashes)
    short = tuple(sorted({h & 0xFFFFFFFF for h in hashes})) if len(hashes) <= SLOTS else ()
    bands = [
        _digest(struct.pack(f"<{ROWS}I", *sig[b * ROWS : (b + 1) * ROWS])) for b in range(BANDS)
    ]
    redis_keys = [keys.dedupe_exact(kind, digest) for kind, digest in exact]
    redis_keys += [keys.dedupe_band(b, digest) for b, digest in enumerate(bands)]
    return Fingerprint(tuple(exact), sig, short, facts, tuple(redis_keys))


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=9).hexdigest()


@dataclass(frozen=True, slots=True)
class Doc:
    """What dedupe keeps of an entry for the window."""

    story: str
    signature: tuple[int, ...]
    shingles: tuple[int, ...]
    facts: ReportFacts | None  # None: written before docs kept them (format 2 and older)
    meaning: Meaning | None = None

    @classmethod
    def of(cls, story: str, fp: Fingerprint) -> Doc:
        return cls(story, fp.signature, fp.shingles, fp.facts, fp.meaning)


def pack_doc(doc: Doc) -> bytes:
    """One string per entry. A JSON line (format version, story, the report's facts, and
    what the story check compares when the semantic layer read it), then binary: the
    signature, the sentence vector and content words (each after its length), and a short
    text's shingles. Binary, because a Redis hash holding the 256-byte signature would need
    its large encoding: twice the bytes."""
    head: dict[str, object] = {"v": DOC_VERSION, "story": doc.story}
    if doc.facts:
        facts = doc.facts
        head["report"] = [facts.headline.tokens(), facts.text.tokens(), sorted(facts.template)]
    vector, words_ = b"", ()
    if doc.meaning:
        meaning = doc.meaning
        head["meaning"] = [meaning.feed, meaning.at, meaning.summary, meaning.language]
        vector, words_ = meaning.vector, meaning.words
    binary = struct.pack(SIGNATURE_FORMAT, *doc.signature)
    binary += struct.pack("<H", len(vector)) + vector
    binary += struct.pack(f"<H{len(words_)}I", len(words_), *words_)
    binary += struct.pack(f"<{len(doc.shingles)}I", *doc.shingles)
    return json.dumps(head).encode() + b"\n" + binary


def unpack_doc(packed: bytes) -> Doc:
    """A doc of this format or of format 2 (whose facts are kept only beside a vector)."""
    if not packed.startswith(b"{"):
        return _unpack_unversioned(packed)
    head_line, binary = packed.split(b"\n", 1)
    head = json.loads(head_line)
    signature_ = struct.unpack_from(SIGNATURE_FORMAT, binary)
    offset = struct.calcsize(SIGNATURE_FORMAT)
    (length,) = struct.unpack_from("<H", binary, offset)
    vector = binary[offset + 2 : offset + 2 + length]
    offset += 2 + length
    (count,) = struct.unpack_from("<H", binary, offset)
    words_ = struct.unpack_from(f"<{count}I", binary, offset + 2)
    rest = binary[offset + 2 + 4 * count :]
    shingles_ = struct.unpack(f"<{len(rest) // 4}I", rest)
    facts = None
    if "report" in head:
        headline, text, template = head["report"]
        facts = ReportFacts(
            Facts.from_tokens(headline), Facts.from_tokens(text), frozenset(template)
        )
    meaning = None
    if vector and facts:
        feed, at, summary, language = head.get("meaning", ["", 0.0, True, "latin"])
        meaning = Meaning(vector, facts, words_, feed, at, summary, language)
    return Doc(head["story"], signature_, shingles_, facts, meaning)


def _unpack_unversioned(packed: bytes) -> Doc:
    """A doc written before docs had a version (newsmon 0.2), still in the window."""
    story, _, binary = packed.split(b"\n", 2)
    signature_ = struct.unpack_from(SIGNATURE_FORMAT, binary)
    rest = binary[struct.calcsize(SIGNATURE_FORMAT) :]
    shingles_ = struct.unpack(f"<{len(rest) // 4}I", rest)
    return Doc(story.decode(), signature_, shingles_, None)
