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
import json
import struct
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import redis

from monitor.core import keys
from monitor.core.models import Entry
from monitor.core.text import words
from workers.pipeline.facts import Facts, ReportFacts, different_events, report_facts
from workers.pipeline.similarity import (
    SLOTS,
    canonical_link,
    content_words,
    headline_facts,
    shingles,
    signature,
    similarity,
    word_overlap,
)

BANDS = 16
ROWS = SLOTS // BANDS
MIN_TITLE_WORDS = 5  # shorter headlines ("Live updates", "Morning briefing") say too little
MAX_ROUNDS = 10
DOC_VERSION = 2
# Each fact keeps the newest reports holding it; a rarer fact (a town, a figure) keeps them
# for longer, and it is those that find another outlet's report hours later.
FACT_LIST_LENGTH = 8
# Below this cosine two texts are about different things, however many words they share.
MIN_COSINE = 0.65
SIGNATURE_FORMAT = f"<{SLOTS}I"

CLAIM_SCRIPT = """
-- KEYS: the entry's dedupe keys (strings), its fact lists, then its doc.
-- ARGV: entry id, ttl, the doc (see pack_doc), the owners read before, one per key (a
-- list's newest entry), space-separated ('-' = absent), or '*' to claim without comparing;
-- how many of the keys are strings; how many entries a fact list keeps.
local strings = tonumber(ARGV[5])
if ARGV[4] ~= '*' then
  local i = 0
  for expected in string.gmatch(ARGV[4], '%S+') do
    i = i + 1
    local owner
    if i <= strings then
      owner = redis.call('GET', KEYS[i])
    else
      owner = redis.call('LINDEX', KEYS[i], 0)
    end
    if (owner or '-') ~= expected then
      return 0
    end
  end
end
for i = 1, strings do
  redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2], 'NX')
end
for i = strings + 1, #KEYS - 1 do
  if redis.call('LINDEX', KEYS[i], 0) ~= ARGV[1] then
    redis.call('LPUSH', KEYS[i], ARGV[1])
    redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[6]) - 1)
  end
  redis.call('EXPIRE', KEYS[i], ARGV[2])
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
    STORY = "story"  # another report of the same event, in other words


@dataclass(frozen=True, slots=True)
class Meaning:
    """What the semantic layer knows of an entry: its sentence vector (int8, unit length
    times 127), the facts of its report, and the hashes of its content words."""

    vector: bytes
    facts: ReportFacts
    words: tuple[int, ...]

    @classmethod
    def of(cls, entry: Entry, vector: np.ndarray) -> Meaning:
        quantised = np.clip(np.round(vector * 127), -127, 127).astype(np.int8).tobytes()
        return cls(quantised, report_facts(entry.title, entry.summary), content_words(entry.text))

    def similarity(self, other: Meaning) -> tuple[float, float]:
        """Cosine of the two vectors, then the share of content words they have in common."""
        a = np.frombuffer(self.vector, dtype=np.int8).astype(np.float32)
        b = np.frombuffer(other.vector, dtype=np.int8).astype(np.float32)
        cosine = float(a @ b) / (float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0)
        return cosine, word_overlap(self.words, other.words)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    exact: tuple[tuple[DuplicateReason, str], ...]  # (kind, digest): link, text, title
    signature: tuple[int, ...]
    shingles: tuple[int, ...]  # a short text's word pairs (32-bit hashes); () for a long one
    facts: str  # the headline's numbers and names (see headline_facts)
    keys: tuple[str, ...]  # the Redis keys: one per exact kind, then one per LSH band
    meaning: Meaning | None = None
    fact_keys: tuple[str, ...] = ()  # the lists of the story index, one per fact of the text


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


def fingerprint(entry: Entry, vector: np.ndarray | None = None) -> Fingerprint:
    text_words = words(entry.text)
    exact = exact_digests(entry, text_words)
    facts = headline_facts(entry.title)
    hashes = shingles(text_words)
    sig = signature(hashes)
    short = tuple(sorted({h & 0xFFFFFFFF for h in hashes})) if len(hashes) <= SLOTS else ()
    bands = [
        _digest(struct.pack(f"<{ROWS}I", *sig[b * ROWS : (b + 1) * ROWS])) for b in range(BANDS)
    ]
    redis_keys = [keys.dedupe_exact(kind, digest) for kind, digest in exact]
    redis_keys += [keys.dedupe_band(b, digest) for b, digest in enumerate(bands)]
    if vector is None:
        return Fingerprint(tuple(exact), sig, short, facts, tuple(redis_keys))
    meaning = Meaning.of(entry, vector)
    fact_keys = tuple(keys.dedupe_fact(token) for token in meaning.facts.text.tokens())
    return Fingerprint(tuple(exact), sig, short, facts, tuple(redis_keys), meaning, fact_keys)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=9).hexdigest()


class Deduper:
    """Decide, for a batch of normalised entries, which are new stories and which are repeats."""

    def __init__(
        self,
        connection: redis.Redis,
        window_seconds: int,
        threshold: float,
        story_threshold: float = 0.0,
    ):
        self.connection = connection
        self.window_seconds = window_seconds
        self.threshold = threshold
        self.story_threshold = story_threshold  # 0: reports in other words are not matched
        self.claim = connection.register_script(CLAIM_SCRIPT)

    def repeats(self, entries: list[Entry]) -> list[bool]:
        """Which entries repeat an earlier one exactly (its link, text or headline): they
        join its story whatever they mean, so they need no sentence vector."""
        with self.connection.pipeline(transaction=False) as pipe:
            for entry in entries:
                exact = exact_digests(entry, words(entry.text))
                pipe.mget([keys.dedupe_exact(kind, digest) for kind, digest in exact])
            owners = pipe.execute()
        return [
            any(owner and owner.decode() != entry.id for owner in read)
            for entry, read in zip(entries, owners, strict=True)
        ]

    def check(
        self, entries: list[Entry], vectors: list[np.ndarray | None] | None = None
    ) -> list[tuple[Entry, Duplicate | None]]:
        """Each entry with its `story_id` set, and the Duplicate it is (None for a new story).
        With the entries' sentence vectors, another outlet's report of a story joins it too
        (an entry without one is matched on its words alone).

        Safe to run twice: an entry that already claimed its keys is recognised as itself.
        """
        prints = [
            fingerprint(e, v)
            for e, v in zip(entries, vectors or [None] * len(entries), strict=True)
        ]
        results: list[tuple[Entry, Duplicate | None] | None] = [None] * len(entries)
        pending = list(range(len(entries)))
        for _ in range(MAX_ROUNDS):
            if not pending:
                break
            decisions = self._decide([entries[i] for i in pending], [prints[i] for i in pending])
            with self.connection.pipeline(transaction=False) as pipe:
                for i, (entry, duplicate, owners) in zip(pending, decisions, strict=True):
                    fp = prints[i]
                    expected = "*" if duplicate else " ".join(o or "-" for o in owners)
                    self.claim(
                        keys=[*fp.keys, *fp.fact_keys, keys.dedupe_doc(entry.id)],
                        args=[
                            entry.id,
                            self.window_seconds,
                            pack_doc(Doc.of(entry.story_id, fp)),
                            expected,
                            len(fp.keys),
                            FACT_LIST_LENGTH,
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
                for key in fp.fact_keys:
                    pipe.lrange(key, 0, FACT_LIST_LENGTH - 1)
                pipe.get(keys.dedupe_doc(entry.id))
            replies = iter(pipe.execute())
        owners_read, listed, own_stories = [], [], []
        for fp in prints:
            owners_read.append([(v or b"").decode() for v in next(replies)])
            listed.append([[v.decode() for v in next(replies)] for _ in fp.fact_keys])
            doc = next(replies)
            own_stories.append(unpack_doc(doc).story if doc else "")
        candidates = sorted(
            {o for owners in owners_read for o in owners if o}
            | {o for lists in listed for members in lists for o in members}
            - {e.id for e in entries}
        )
        docs = self._docs(candidates)
        if self.story_threshold:
            # The first report of each candidate's story too: a report joins a story only if
            # it is the same event as the story's first, not just as some report in it.
            firsts = {d.story.removeprefix("st_") for d in docs.values()} - set(docs)
            docs |= self._docs(sorted(firsts))

        claimed: dict[str, str] = {}  # key -> the entry of this batch that claims it first
        pushed: dict[str, list[str]] = {}  # fact list -> entries of this batch pushed onto it
        decisions = []
        batch = zip(entries, prints, owners_read, listed, own_stories, strict=True)
        for entry, fp, read, lists, story in batch:
            owners = [
                owner or claimed.get(key, "") for key, owner in zip(fp.keys, read, strict=True)
            ]
            members = [
                [*pushed.get(key, [])[::-1], *m] for key, m in zip(fp.fact_keys, lists, strict=True)
            ]
            # An edited entry's own story is no other report of it.
            reporters = {o for m in members for o in m if o in docs and docs[o].story != story}
            duplicate = self._match(entry, fp, owners, reporters, docs)
            if duplicate:
                story = docs[duplicate.of].story or f"st_{duplicate.of}"
            entry = dataclasses.replace(entry, story_id=story or f"st_{entry.id}")
            claimed.update(
                (key, entry.id) for key, owner in zip(fp.keys, owners, strict=True) if not owner
            )
            for key in fp.fact_keys:
                pushed.setdefault(key, []).append(entry.id)
            docs[entry.id] = Doc.of(entry.story_id, fp)
            heads = [m[0] if m else "" for m in members]
            decisions.append((entry, duplicate, owners + heads))
        return decisions

    def _docs(self, entry_ids: list[str]) -> dict[str, Doc]:
        with self.connection.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.get(keys.dedupe_doc(entry_id))
            return {e: unpack_doc(d) for e, d in zip(entry_ids, pipe.execute(), strict=True) if d}

    def _match(
        self,
        entry: Entry,
        fp: Fingerprint,
        owners: list[str],
        reporters: set[str],
        docs: dict[str, Doc],
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
        if best or fp.meaning is None or not self.story_threshold:
            return best
        return self._same_event(entry, fp.meaning, reporters, docs)

    def _same_event(
        self, entry: Entry, meaning: Meaning, reporters: set[str], docs: dict[str, Doc]
    ) -> Duplicate | None:
        """The closest earlier report of the same event among those sharing a fact with this
        one: alike in meaning and wording together, and no fact of this headline swapped
        with one of any report of that story seen here (its first report among them), so
        that a vague report cannot chain two different events into one story."""
        conflicting = {
            doc.story
            for doc in docs.values()
            if doc.meaning and different_events(meaning.facts, doc.meaning.facts)
        }
        best: Duplicate | None = None
        for reporter in reporters - {entry.id}:
            doc = docs.get(reporter)
            if doc is None or doc.meaning is None or doc.story in conflicting:
                continue
            cosine, overlap = meaning.similarity(doc.meaning)
            alike = cosine >= MIN_COSINE and (cosine + overlap) / 2 >= self.story_threshold
            if alike and (best is None or cosine > best.similarity):
                best = Duplicate(reporter, DuplicateReason.STORY, cosine)
        return best


@dataclass(frozen=True, slots=True)
class Doc:
    """What dedupe keeps of an entry for the window."""

    story: str
    signature: tuple[int, ...]
    shingles: tuple[int, ...]
    facts: str
    meaning: Meaning | None = None

    @classmethod
    def of(cls, story: str, fp: Fingerprint) -> Doc:
        return cls(story, fp.signature, fp.shingles, fp.facts, fp.meaning)


def pack_doc(doc: Doc) -> bytes:
    """One string per entry. A JSON line (format version, story, facts, and the report's
    facts when the semantic layer read it), then binary: the signature, the sentence vector
    and content words (each after its length), and a short text's shingles. Binary, because
    a Redis hash holding the 256-byte signature would need its large encoding: twice the
    bytes."""
    head: dict[str, object] = {"v": DOC_VERSION, "story": doc.story, "facts": doc.facts}
    vector, words_ = b"", ()
    if doc.meaning:
        report = doc.meaning.facts
        head["report"] = [report.headline.tokens(), report.text.tokens(), sorted(report.template)]
        vector, words_ = doc.meaning.vector, doc.meaning.words
    binary = struct.pack(SIGNATURE_FORMAT, *doc.signature)
    binary += struct.pack("<H", len(vector)) + vector
    binary += struct.pack(f"<H{len(words_)}I", len(words_), *words_)
    binary += struct.pack(f"<{len(doc.shingles)}I", *doc.shingles)
    return json.dumps(head).encode() + b"\n" + binary


def unpack_doc(packed: bytes) -> Doc:
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
    meaning = None
    if "report" in head:
        headline, text, template = head["report"]
        facts = ReportFacts(
            Facts.from_tokens(headline), Facts.from_tokens(text), frozenset(template)
        )
        meaning = Meaning(vector, facts, words_)
    return Doc(head["story"], signature_, shingles_, head["facts"], meaning)


def _unpack_unversioned(packed: bytes) -> Doc:
    """A doc written before docs had a version (newsmon 0.2), still in the window."""
    story, facts, binary = packed.split(b"\n", 2)
    signature_ = struct.unpack_from(SIGNATURE_FORMAT, binary)
    rest = binary[struct.calcsize(SIGNATURE_FORMAT) :]
    shingles_ = struct.unpack(f"<{len(rest) // 4}I", rest)
    return Doc(story.decode(), signature_, shingles_, facts.decode())
