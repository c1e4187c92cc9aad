"""Dedupe step: is this entry a story already seen in the window, across all feeds?
(What it compares is computed in fingerprint.py, similarity.py, facts.py and meaning.py; this
module finds the earlier reports, decides, and claims in Redis.)

An entry is a duplicate when an earlier one has the same canonical link, the same
normalised text, the same normalised headline, or near-identical text. Near-identical is
judged on a MinHash signature of word pairs (one-permutation hashing, 64 slots), found
through LSH bands (16 bands of 4 slots) and confirmed by the Jaccard similarity: exact for
two short texts (at most 64 word pairs, whose pairs are kept: no more bytes than the
signature), estimated from the signatures otherwise;
headlines whose facts (places, names, numbers, days) differ are different events, however
alike the words. Another outlet's report of the event, in its own words or another
language, joins the story when the pair model says so (see `_same_event`).

State lives in Redis so every worker shares it, and each key expires with the window.
The check is optimistic and atomic: read the keys, decide in Python, then claim them with
a Lua compare-and-set that fails if any key changed since the read (say, a twin claimed by
another worker at the same moment); a failed claim is simply decided again.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import redis

from monitor.core import keys
from monitor.core.models import DIMENSIONS, Entry
from workers.ml.pair_model import PairModel
from workers.pipeline.facts import ACROSS_SCRIPTS, WITHIN_SCRIPT, Conflict, conflicts
from workers.pipeline.fingerprint import (
    Doc,
    DuplicateReason,
    Fingerprint,
    fingerprint,
    pack_doc,
    text_similarity,
    unpack_doc,
)
from workers.pipeline.meaning import Meaning, pair_features

MAX_ROUNDS = 10
# Each fact keeps the newest reports holding it; a rarer fact (a town, a figure) keeps them
# for longer, and it is those that find another outlet's report hours later.
FACT_LIST_LENGTH = 8
# The meaning index: every report read for its meaning, as its entry id and int8 vector,
# appended to one string per hour. Every batch reads the window's and compares by cosine, so
# that a report sharing no word or fact with a story (another language, other names) still
# finds it. The newest MEANING_LIMIT reports are read, the most alike MEANING_CANDIDATES kept.
ENTRY_ID_BYTES = 20
MEANING_LIMIT = 20_000
MEANING_CANDIDATES = 8
MEANING_FLOOR = 0.2  # below this cosine no pair of the tune part is one event

CLAIM_SCRIPT = """
-- KEYS: the entry's dedupe keys (strings), its fact lists, the meaning index's hour, its
-- story's languages, then its doc.
-- ARGV: entry id, ttl, the doc (see pack_doc), the owners read before, one per key (a
-- list's newest entry), space-separated ('-' = absent), or '*' to claim without comparing;
-- how many of the keys are strings; how many entries a fact list keeps; the entry's record
-- for the meaning index and its language ('' for both when it has no vector).
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
for i = strings + 1, #KEYS - 3 do
  if redis.call('LINDEX', KEYS[i], 0) ~= ARGV[1] then
    redis.call('LPUSH', KEYS[i], ARGV[1])
    redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[6]) - 1)
  end
  redis.call('EXPIRE', KEYS[i], ARGV[2])
end
-- A doc already there: this entry was decided before (a job run again), and indexed then.
if ARGV[7] ~= '' and redis.call('EXISTS', KEYS[#KEYS]) == 0 then
  redis.call('APPEND', KEYS[#KEYS - 2], ARGV[7])
  redis.call('EXPIRE', KEYS[#KEYS - 2], ARGV[2])
end
if ARGV[8] ~= '' then
  redis.call('SADD', KEYS[#KEYS - 1], ARGV[8])
  redis.call('EXPIRE', KEYS[#KEYS - 1], ARGV[2])
end
redis.call('SET', KEYS[#KEYS], ARGV[3], 'EX', ARGV[2])
return 1
"""


@dataclass(frozen=True, slots=True)
class Duplicate:
    of: str  # the entry id it duplicates
    reason: DuplicateReason
    similarity: float  # Jaccard of the texts; for a story, the pair model's probability
    # For a story: the features that decided the join, with their values.
    why: dict[str, float] = dataclasses.field(default_factory=dict)


class Deduper:
    """Decide, for a batch of normalised entries, which are new stories and which are repeats."""

    def __init__(
        self,
        connection: redis.Redis,
        window_seconds: int,
        threshold: float,
        pairs: PairModel | None = None,
    ):
        self.connection = connection
        self.window_seconds = window_seconds
        self.threshold = threshold
        self.pairs = pairs  # None: reports in other words are not matched
        self.claim = connection.register_script(CLAIM_SCRIPT)

    def repeats(self, entries: list[Entry], prints: list[Fingerprint]) -> list[bool]:
        """Which entries (with their fingerprints) repeat an earlier one exactly (its link,
        text or headline): they join its story whatever they mean, so they need no sentence
        vector."""
        with self.connection.pipeline(transaction=False) as pipe:
            for fp in prints:
                pipe.mget(fp.keys[: len(fp.exact)])
            owners = pipe.execute()
        return [
            any(owner and owner.decode() != entry.id for owner in read)
            for entry, read in zip(entries, owners, strict=True)
        ]

    def check(
        self,
        entries: list[Entry],
        vectors: list[np.ndarray | None] | None = None,
        prints: list[Fingerprint] | None = None,
    ) -> list[tuple[Entry, Duplicate | None]]:
        """Each entry with its `story_id` set, and the Duplicate it is (None for a new story).
        With the entries' sentence vectors, another outlet's report of a story joins it too
        (an entry without one is matched on its words alone). `prints`: the entries'
        fingerprints without their meaning, if the caller has them (for `repeats`).

        Safe to run twice: an entry that already claimed its keys is recognised as itself.
        """
        prints = [
            fp if v is None else fp.with_meaning(e, v)
            for e, v, fp in zip(
                entries,
                vectors or [None] * len(entries),
                prints or [fingerprint(e) for e in entries],
                strict=True,
            )
        ]
        results: list[tuple[Entry, Duplicate | None] | None] = [None] * len(entries)
        pending = list(range(len(entries)))
        hour = keys.dedupe_meaning(int(time.time() // 3600))
        for _ in range(MAX_ROUNDS):
            if not pending:
                break
            decisions = self._decide([entries[i] for i in pending], [prints[i] for i in pending])
            with self.connection.pipeline(transaction=False) as pipe:
                for i, (entry, duplicate, owners) in zip(pending, decisions, strict=True):
                    fp = prints[i]
                    expected = "*" if duplicate else " ".join(o or "-" for o in owners)
                    indexed = b""
                    if fp.meaning:
                        indexed = entry.id.encode().ljust(ENTRY_ID_BYTES) + fp.meaning.vector
                    self.claim(
                        keys=[
                            *fp.keys,
                            *fp.fact_keys,
                            hour,
                            keys.dedupe_story_languages(entry.story_id),
                            keys.dedupe_doc(entry.id),
                        ],
                        args=[
                            entry.id,
                            self.window_seconds,
                            pack_doc(Doc.of(entry.story_id, fp)),
                            expected,
                            len(fp.keys),
                            FACT_LIST_LENGTH,
                            indexed,
                            fp.meaning.language if fp.meaning else "",
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
        alike = self._alike_in_meaning(entries, prints) if self.pairs else [set()] * len(entries)
        candidates = sorted(
            {o for owners in owners_read for o in owners if o}
            | {o for lists in listed for members in lists for o in members}
            | {o for found in alike for o in found} - {e.id for e in entries}
        )
        docs = self._docs(candidates)
        languages: dict[str, set[str]] = {}  # story -> the languages its reports are written in
        if self.pairs:
            # The first report of each candidate's story too: a report joins a story only if
            # it is the same event as the story's first, not just as some report in it.
            firsts = {d.story.removeprefix("st_") for d in docs.values()} - set(docs)
            docs |= self._docs(sorted(firsts))
            languages = self._languages(sorted({d.story for d in docs.values()}))

        claimed: dict[str, str] = {}  # key -> the entry of this batch that claims it first
        pushed: dict[str, list[str]] = {}  # fact list -> entries of this batch pushed onto it
        indexed: list[str] = []  # entries of this batch read for their meaning (the index)
        decisions = []
        batch = zip(entries, prints, owners_read, listed, own_stories, alike, strict=True)
        for entry, fp, read, lists, story, found in batch:
            owners = [
                owner or claimed.get(key, "") for key, owner in zip(fp.keys, read, strict=True)
            ]
            members = [
                [*pushed.get(key, [])[::-1], *m] for key, m in zip(fp.fact_keys, lists, strict=True)
            ]
            # An edited entry's own story is no other report of it.
            near = {
                o for o in indexed if fp.meaning and _cosine(fp.meaning, docs[o]) >= MEANING_FLOOR
            }
            reporters = {
                o
                for o in {*found, *near, *(o for m in members for o in m)}
                if o in docs and docs[o].story != story
            }
            duplicate = self._match(entry, fp, owners, reporters, docs, languages)
            if duplicate:
                story = docs[duplicate.of].story or f"st_{duplicate.of}"
            entry = dataclasses.replace(entry, story_id=story or f"st_{entry.id}")
            if fp.meaning:
                languages.setdefault(entry.story_id, set()).add(fp.meaning.language)
            claimed.update(
                (key, entry.id) for key, owner in zip(fp.keys, owners, strict=True) if not owner
            )
            for key in fp.fact_keys:
                pushed.setdefault(key, []).append(entry.id)
            if fp.meaning:
                indexed.append(entry.id)
            docs[entry.id] = Doc.of(entry.story_id, fp)
            heads = [m[0] if m else "" for m in members]
            decisions.append((entry, duplicate, owners + heads))
        return decisions

    def _alike_in_meaning(self, entries: list[Entry], prints: list[Fingerprint]) -> list[set[str]]:
        """For each entry with a vector, the reports of the window closest to it in meaning,
        from the meaning index."""
        if not any(fp.meaning for fp in prints):
            return [set() for _ in entries]
        now = int(time.time() // 3600)
        hours = range(now, now - self.window_seconds // 3600 - 1, -1)
        with self.connection.pipeline(transaction=False) as pipe:
            for hour in hours:
                pipe.get(keys.dedupe_meaning(hour))
            records = b"".join(r for r in pipe.execute() if r)  # newest hour first
        size = ENTRY_ID_BYTES + DIMENSIONS
        count = min(len(records) // size, MEANING_LIMIT)
        if not count:
            return [set() for _ in entries]
        table = np.frombuffer(records, dtype=np.uint8, count=count * size).reshape(count, size)
        asking = [i for i, fp in enumerate(prints) if fp.meaning]
        queries = np.array([fp.meaning.unit_vector() for fp in prints if fp.meaning])
        # One product for the batch; the stored vectors are unit length times 127.
        cosines = table[:, ENTRY_ID_BYTES:].view(np.int8).astype(np.float32) @ queries.T / 127
        keep = min(MEANING_CANDIDATES, count)
        found: list[set[str]] = [set() for _ in entries]
        for column, i in enumerate(asking):
            best = np.argpartition(-cosines[:, column], keep - 1)[:keep]
            found[i] = {
                bytes(table[row, :ENTRY_ID_BYTES]).decode().rstrip()
                for row in best
                if cosines[row, column] >= MEANING_FLOOR
            } - {entries[i].id}
        return found

    def _languages(self, story_ids: list[str]) -> dict[str, set[str]]:
        with self.connection.pipeline(transaction=False) as pipe:
            for story_id in story_ids:
                pipe.smembers(keys.dedupe_story_languages(story_id))
            replies = pipe.execute()
        return {s: {m.decode() for m in r} for s, r in zip(story_ids, replies, strict=True)}

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
        languages: dict[str, set[str]],
    ) -> Duplicate | None:
        for (kind, _), owner in zip(fp.exact, owners, strict=False):
            if owner and owner != entry.id:
                return Duplicate(owner, kind, 1.0)
        best: Duplicate | None = None
        # In order, so that a tie goes the same way in every process (sets are hash-ordered).
        for owner in sorted(set(owners[len(fp.exact) :]) - {"", entry.id}):
            doc = docs.get(owner)
            if doc is None or doc.facts is None or doc.facts.headline != fp.facts.headline:
                continue
            score = text_similarity(fp, doc)
            if score >= self.threshold and (best is None or score > best.similarity):
                best = Duplicate(owner, DuplicateReason.NEAR, score)
        if best or fp.meaning is None or self.pairs is None:
            return best
        return self._same_event(entry, fp.meaning, reporters, docs, languages, self.pairs)

    def _same_event(
        self,
        entry: Entry,
        meaning: Meaning,
        reporters: set[str],
        docs: dict[str, Doc],
        languages: dict[str, set[str]],
        pairs: PairModel,
    ) -> Duplicate | None:
        """The earlier report most likely of the same event, by the pair model, among those
        found by a shared fact or by meaning; none of a story where a report seen here has a
        fact swapped with this one (a place, a number, a stage...), so that a vague report
        cannot chain two different events into one story."""
        candidates = {docs[r].story for r in reporters if r in docs}
        found: dict[str, frozenset[Conflict]] = {}  # report -> its facts' conflicts with this one
        conflicting: set[str] = set()
        for report, doc in docs.items():
            if doc.story in candidates and doc.meaning:
                found[report] = conflicts(meaning.facts, doc.meaning.facts)
                if _kept_apart(meaning, doc.meaning, found[report]):
                    conflicting.add(doc.story)
        best: Duplicate | None = None
        for reporter in sorted(reporters - {entry.id}):  # in order: a tie goes one way
            doc = docs.get(reporter)
            if doc is None or doc.meaning is None or doc.story in conflicting:
                continue
            features = pair_features(meaning, doc.meaning, found[reporter])
            # A translation: a report joining a story none of whose reports is in its language.
            translation = meaning.language not in languages.get(doc.story, {doc.meaning.language})
            probability = pairs.joins(features, translation)
            if probability is not None and (best is None or probability > best.similarity):
                why = pairs.deciding(features)
                best = Duplicate(reporter, DuplicateReason.STORY, probability, why)
        return best


def _kept_apart(a: Meaning, b: Meaning, found: frozenset[Conflict]) -> bool:
    """The conflicts `found` between the two reports' facts keep them apart: facts.WITHIN_SCRIPT
    between two Latin-script reports; facts.ACROSS_SCRIPTS otherwise, since Russian and
    Ukrainian decline their names ("Черноморск", "Черноморска") and spell them apart
    ("Черноморск", "Чорноморськ"), and a name newsmon knows no word of is no fact there."""
    latin = not (a.cyrillic or b.cyrillic)
    return bool(found & (WITHIN_SCRIPT if latin else ACROSS_SCRIPTS))


def _cosine(meaning: Meaning, doc: Doc) -> float:
    return float(meaning.unit_vector() @ doc.meaning.unit_vector()) if doc.meaning else -1.0
