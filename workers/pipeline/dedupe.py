"""Dedupe step: is this entry a story already seen in the window, across all feeds?
(What it compares is computed in similarity.py; this module keeps and claims it in Redis.)

An entry is a duplicate when an earlier one has the same canonical link, the same
normalised text, the same normalised headline, or near-identical text. Near-identical is
judged on a MinHash signature of word pairs (one-permutation hashing, 64 slots), found
through LSH bands (16 bands of 4 slots) and confirmed by the Jaccard similarity: exact for
two short texts (at most 64 word pairs, whose pairs are kept: no more bytes than the
signature), estimated from the signatures otherwise;
headlines whose numbers or names (places, people, days) differ are different events, however
alike the words.

State lives in Redis so every worker shares it, and each key expires with the window.
The check is optimistic and atomic: read the keys, decide in Python, then claim them with
a Lua compare-and-set that fails if any key changed since the read (say, a twin claimed by
another worker at the same moment); a failed claim is simply decided again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from dataclasses import dataclass
from enum import StrEnum

import redis

from monitor.core import keys
from monitor.core.models import Entry
from monitor.core.text import words
from workers.pipeline.similarity import (
    SLOTS,
    canonical_link,
    headline_facts,
    shingles,
    signature,
    similarity,
)

BANDS = 16
ROWS = SLOTS // BANDS
MIN_TITLE_WORDS = 5  # shorter headlines ("Live updates", "Morning briefing") say too little
MAX_ROUNDS = 10
SIGNATURE_FORMAT = f"<{SLOTS}I"

CLAIM_SCRIPT = """
-- KEYS: the entry's dedupe keys, then its doc.
-- ARGV: entry id, ttl, the doc (see pack_doc), and the owners read before, one per key,
-- space-separated ('-' = absent), or '*' to claim without comparing.
local n = #KEYS - 1
if ARGV[4] ~= '*' then
  local i = 0
  for expected in string.gmatch(ARGV[4], '%S+') do
    i = i + 1
    if (redis.call('GET', KEYS[i]) or '-') ~= expected then
      return 0
    end
  end
end
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2], 'NX')
end
redis.call('SET', KEYS[#KEYS], ARGV[3], 'EX', ARGV[2])
return 1
"""


class DuplicateReason(StrEnum):
    """What an entry shares with the earlier one it repeats: the first three are also the
    kinds of exact key (and name them in Redis)."""

    LINK = "link"
    TEXT = "text"
    TITLE = "title"
    NEAR = "near"  # near-identical text


@dataclass(frozen=True, slots=True)
class Fingerprint:
    exact: tuple[tuple[DuplicateReason, str], ...]  # (kind, digest): link, text, title
    signature: tuple[int, ...]
    shingles: tuple[int, ...]  # a short text's word pairs (32-bit hashes); () for a long one
    facts: str  # the headline's numbers and names (see headline_facts)
    keys: tuple[str, ...]  # the Redis keys: one per exact kind, then one per LSH band


@dataclass(frozen=True, slots=True)
class Duplicate:
    of: str  # the entry id it duplicates
    reason: DuplicateReason
    similarity: float


def text_similarity(a: Fingerprint | Doc, b: Doc) -> float:
    """Jaccard similarity: exact when both texts are short, where an estimate from a few
    filled slots is noisy (one changed word in 17 can read as 0.59 instead of 0.76)."""
    if a.shingles and b.shingles:
        both = len(set(a.shingles) & set(b.shingles))
        return both / (len(a.shingles) + len(b.shingles) - both)
    return similarity(a.signature, b.signature)


def fingerprint(entry: Entry) -> Fingerprint:
    title_words = words(entry.title)
    exact = []
    if entry.link:
        exact.append((DuplicateReason.LINK, _digest(canonical_link(entry.link).encode())))
    text_words = words(entry.text)
    exact.append((DuplicateReason.TEXT, _digest(" ".join(text_words).encode())))
    if len(title_words) >= MIN_TITLE_WORDS:
        exact.append((DuplicateReason.TITLE, _digest(" ".join(title_words).encode())))
    facts = headline_facts(entry.title)
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


class Deduper:
    """Decide, for a batch of normalised entries, which are new stories and which are repeats."""

    def __init__(self, connection: redis.Redis, window_seconds: int, threshold: float):
        self.connection = connection
        self.window_seconds = window_seconds
        self.threshold = threshold
        self.claim = connection.register_script(CLAIM_SCRIPT)

    def check(self, entries: list[Entry]) -> list[tuple[Entry, Duplicate | None]]:
        """Each entry with its `story_id` set, and the Duplicate it is (None for a new story).

        Safe to run twice: an entry that already claimed its keys is recognised as itself.
        """
        prints = [fingerprint(e) for e in entries]
        results: list[tuple[Entry, Duplicate | None] | None] = [None] * len(entries)
        pending = list(range(len(entries)))
        for _ in range(MAX_ROUNDS):
            if not pending:
                break
            decisions = self._decide([entries[i] for i in pending], [prints[i] for i in pending])
            with self.connection.pipeline(transaction=False) as pipe:
                for i, (entry, duplicate, owners) in zip(pending, decisions, strict=True):
                    expected = "*" if duplicate else " ".join(o or "-" for o in owners)
                    self.claim(
                        keys=[*prints[i].keys, keys.dedupe_doc(entry.id)],
                        args=[
                            entry.id,
                            self.window_seconds,
                            pack_doc(Doc.of(entry.story_id, prints[i])),
                            expected,
                        ],
                        client=pipe,
                    )
                claimed = pipe.execute()
            for i, (entry, duplicate, _), ok in zip(pending, decisions, claimed, strict=True):
                if ok:
                    results[i] = (entry, duplicate)
            pending = [i for i, ok in zip(pending, claimed, strict=True) if not ok]
        if pending:
            raise RuntimeError(
                f"dedupe: {len(pending)} entries still contended after {MAX_ROUNDS} rounds"
            )
        return results  # type: ignore[return-value]

    def _decide(
        self, entries: list[Entry], prints: list[Fingerprint]
    ) -> list[tuple[Entry, Duplicate | None, list[str]]]:
        """Judge each entry, in order, as if the entries before it in the batch had already
        made their claims (so twins in one batch need no second round); returns with each
        the owners its claim expects to find."""
        with self.connection.pipeline(transaction=False) as pipe:
            for entry, fp in zip(entries, prints, strict=True):
                pipe.mget(fp.keys)
                pipe.get(keys.dedupe_doc(entry.id))
            replies = pipe.execute()
        owners_read = [[(v or b"").decode() for v in r] for r in replies[0::2]]
        own_stories = [unpack_doc(doc).story if doc else "" for doc in replies[1::2]]
        candidates = sorted(
            {o for owners in owners_read for o in owners if o} - {e.id for e in entries}
        )
        with self.connection.pipeline(transaction=False) as pipe:
            for candidate in candidates:
                pipe.get(keys.dedupe_doc(candidate))
            docs = {
                c: unpack_doc(doc) for c, doc in zip(candidates, pipe.execute(), strict=True) if doc
            }

        claimed: dict[str, str] = {}  # key -> the entry of this batch that claims it first
        decisions = []
        for entry, fp, read, story in zip(entries, prints, owners_read, own_stories, strict=True):
            owners = [
                owner or claimed.get(key, "") for key, owner in zip(fp.keys, read, strict=True)
            ]
            duplicate = self._match(entry, fp, owners, docs)
            if duplicate:
                story = docs[duplicate.of].story or f"st_{duplicate.of}"
            entry = dataclasses.replace(entry, story_id=story or f"st_{entry.id}")
            claimed.update(
                (key, entry.id) for key, owner in zip(fp.keys, owners, strict=True) if not owner
            )
            docs[entry.id] = Doc.of(entry.story_id, fp)
            decisions.append((entry, duplicate, owners))
        return decisions

    def _match(
        self, entry: Entry, fp: Fingerprint, owners: list[str], docs: dict[str, Doc]
    ) -> Duplicate | None:
        for (kind, _), owner in zip(fp.exact, owners, strict=False):
            if owner and owner != entry.id:
                return Duplicate(owner, kind, 1.0)
        best: Duplicate | None = None
        for owner in set(owners[len(fp.exact) :]) - {"", entry.id}:
            doc = docs.get(owner)
            if doc is None or doc.facts != fp.facts:
                continue
            score = text_similarity(fp, doc)
            if score >= self.threshold and (best is None or score > best.similarity):
                best = Duplicate(owner, DuplicateReason.NEAR, score)
        return best


@dataclass(frozen=True, slots=True)
class Doc:
    """What dedupe keeps of an entry for the window."""

    story: str
    signature: tuple[int, ...]
    shingles: tuple[int, ...]
    facts: str

    @classmethod
    def of(cls, story: str, fp: Fingerprint) -> Doc:
        return cls(story, fp.signature, fp.shingles, fp.facts)


def pack_doc(doc: Doc) -> bytes:
    """One string per entry: story and facts, then the binary signature and a short text's
    shingles. A Redis hash holding the 256-byte signature would need its large encoding:
    twice the bytes."""
    binary = struct.pack(SIGNATURE_FORMAT, *doc.signature)
    binary += struct.pack(f"<{len(doc.shingles)}I", *doc.shingles)
    return f"{doc.story}\n{doc.facts}\n".encode() + binary


def unpack_doc(packed: bytes) -> Doc:
    story, facts, binary = packed.split(b"\n", 2)
    signature_ = struct.unpack_from(SIGNATURE_FORMAT, binary)
    rest = binary[struct.calcsize(SIGNATURE_FORMAT) :]
    shingles_ = struct.unpack(f"<{len(rest) // 4}I", rest)
    return Doc(story.decode(), signature_, shingles_, facts.decode())
