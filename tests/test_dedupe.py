"""Dedupe against real Redis: exact, near and look-alike, and atomic under concurrency."""

from __future__ import annotations

import threading

import pytest

from monitor.core.models import Entry
from tests.helpers import normalised_entry
from tests.stories import GAS, KHARKIV, WIRE_ITEMS
from workers.pipeline.dedupe import Deduper
from workers.pipeline.facts import report_facts
from workers.pipeline.fingerprint import Doc, fingerprint, pack_doc, text_similarity, unpack_doc
from workers.pipeline.similarity import canonical_link, similarity


def entry(title: str, summary: str = "", link: str = "", feed: str = "f", key: str = "") -> Entry:
    key = key or f"{title}|{summary}|{link}"
    return normalised_entry(feed=feed, key=key, title=title, summary=summary, link=link)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://www.example.org/a/b/?utm_source=x&utm_medium=rss&id=7", "example.org/a/b?id=7"),
        ("http://example.org/a/b?id=7&fbclid=XYZ", "example.org/a/b?id=7"),
        ("https://EXAMPLE.org:443/a?b=2&a=1", "example.org/a?a=1&b=2"),
        ("https://example.org/live#post-12", "example.org/live#post-12"),
        ("https://example.org:8443/x", "example.org:8443/x"),
    ],
)
def test_canonical_link(url, canonical):
    assert canonical_link(url) == canonical


def test_similarity_tracks_how_much_text_is_shared():
    base = entry(KHARKIV.title, KHARKIV.summary)
    one_word = entry(KHARKIV.title, KHARKIV.summary.replace("hurt", "injured"))
    other = entry(WIRE_ITEMS[1].title, WIRE_ITEMS[1].summary)
    near = similarity(fingerprint(base).signature, fingerprint(one_word).signature)
    far = similarity(fingerprint(base).signature, fingerprint(other).signature)
    assert near >= 0.75 and far <= 0.3


@pytest.fixture
def deduper(connection) -> Deduper:
    return Deduper(connection, window_seconds=3600, threshold=0.6)


def test_variants_join_the_first_story_and_look_alikes_do_not(deduper):
    first = entry(GAS.title, GAS.summary, "https://news.example/gas")
    variants = [
        entry(GAS.title, GAS.summary, "https://other.example/x", key="repost"),  # same text
        entry(GAS.title, "", "https://other.example/y"),  # headline alone
        entry(
            GAS.title.upper(), GAS.summary + " Talks are expected next week.", "https://o.example/z"
        ),
        entry(
            "Another headline", "Different words", "https://www.news.example/gas/?utm_campaign=feed"
        ),  # same link
    ]
    look_alikes = [
        entry(
            "Slovakia summons Ukraine's ambassador as gas transit row deepens in 2026",
            GAS.summary,
            "https://o.example/2026",
        ),  # a number in the headline differs
        entry(
            "Hungary summons Ukraine's ambassador over oil pipeline halt",
            "Budapest called in Kyiv's envoy after oil stopped flowing to its refineries.",
            "https://o.example/hu",
        ),
    ]
    results = deduper.check([first, *variants, *look_alikes])
    story = results[0][0].story_id
    assert results[0][1] is None
    assert [d.reason for _, d in results[1:5]] == ["text", "title", "title", "link"]
    assert all(e.story_id == story and d.of == first.id for e, d in results[1:5])
    assert all(d is None and e.story_id != story for e, d in results[5:])


def test_near_duplicate_across_feeds(deduper):
    original = entry(KHARKIV.title, KHARKIV.summary, KHARKIV.link, feed="blog")
    edited = entry(
        "Drone hits Kharkiv apartment block, killing two",
        KHARKIV.summary.replace("hurt", "injured"),
        "https://wire.example/k",
        feed="wire",
    )
    ((_, none),) = deduper.check([original])
    ((_, duplicate),) = deduper.check([edited])
    assert none is None
    assert (
        duplicate.reason == "near" and duplicate.of == original.id and duplicate.similarity >= 0.6
    )


def test_a_short_text_with_one_word_changed_joins_its_story(deduper):
    """The MinHash estimate is noisy on a short text: here it reads 0.34 where the shared
    word pairs are 0.8, so short texts are compared on their word pairs themselves."""
    summary = "A deputy will act as head until a new one is chosen."
    original = entry("President removes navy commander after ship losses", summary)
    edited = entry("President fires navy commander after ship losses", summary)
    first, second = fingerprint(original), fingerprint(edited)
    assert similarity(first.signature, second.signature) < 0.6
    assert text_similarity(second, Doc.of("", first)) == 0.8  # 12 of 15 word pairs shared
    deduper.check([original])
    ((joined, duplicate),) = deduper.check([edited])
    assert duplicate.reason == "near" and duplicate.of == original.id
    assert duplicate.similarity == 0.8 and joined.story_id == f"st_{original.id}"


def test_a_doc_stored_without_word_pairs_is_compared_by_its_signature():
    """Docs written before word pairs were kept, and those of long texts, have none."""
    fp = fingerprint(entry(KHARKIV.title, KHARKIV.summary))
    stored = unpack_doc(pack_doc(Doc("st_1", fp.signature, (), fp.facts)))
    assert stored == Doc("st_1", fp.signature, (), fp.facts)
    assert text_similarity(fp, stored) == similarity(fp.signature, fp.signature) == 1.0
    assert unpack_doc(pack_doc(Doc.of("st_1", fp))).shingles == fp.shingles != ()


def test_running_a_batch_twice_gives_the_same_answer(deduper):
    batch = [
        entry(KHARKIV.title, KHARKIV.summary),
        entry(KHARKIV.title, KHARKIV.summary, key="again"),
    ]
    first = deduper.check(batch)
    second = deduper.check(batch)
    assert [(e.story_id, d) for e, d in first] == [(e.story_id, d) for e, d in second]
    assert first[0][1] is None and first[1][1].of == batch[0].id


def test_twins_claimed_at_the_same_moment_make_one_story(connection):
    twins = [entry(GAS.title, GAS.summary, key=f"twin-{i}") for i in range(8)]
    barrier = threading.Barrier(len(twins))
    results = []

    def claim(twin: Entry) -> None:
        deduper = Deduper(
            connection.__class__(connection_pool=connection.connection_pool), 3600, 0.6
        )
        barrier.wait()
        results.extend(deduper.check([twin]))

    threads = [threading.Thread(target=claim, args=(t,)) for t in twins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(duplicate is None for _, duplicate in results) == 1
    assert len({e.story_id for e, _ in results}) == 1


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (
            "Drone hits substation in Odesa region",
            "Drone hits substation in Mykolaiv region",
            False,
        ),
        ("Ministers meet in Paris on Monday", "Ministers meet in Paris on Friday", False),
        ("UN appeals for 2.6 billion dollars", "UN appeals for 2.6bn dollars", True),
        ("Law passes first reading", "Law passes second reading", False),
        ("Shelling kills three in town", "Shelling kills 3 in town", True),
        ("Clinic fits its 1,000th prosthesis", "Clinic fits its 1000th prosthesis", True),
        ("Clinic fits its 1,000th prosthesis", "Clinic fits its 100th prosthesis", False),
        ("Plasma drive collects 900 litres", "Plasma drive collects nine hundred litres", True),
        ("Plasma drive collects 900 litres", "Plasma drive collects eight hundred litres", False),
        ("Town gets 2000 heaters", "Town gets two thousand heaters", True),
        ("Kyiv gets first Brazilian-made shells", "Kyiv gets first Brazilian-built shells", True),
        ("Kyiv gets first Brazilian-made shells", "Kyiv gets first Chilean-made shells", False),
        (
            "Sea drones sink patrol boat off Crimea",
            "Naval drones sink patrol boat off Crimea",
            True,
        ),
        # A known place counts even as the first word, and by the place it names.
        (
            "Lithuania grants residence to dissidents",
            "Latvia grants residence to dissidents",
            False,
        ),
        ("Slovakia's cabinet faces protests", "Slovak cabinet faces protests", True),
        # Title Case capitalises every word: there a name is a word that is no English word.
        ("Drone Hits Substation In Odesa Region", "Drone Hits Substation In Sumy Region", False),
        ("Drone Hits Substation In Bilhorod", "Drone Hits Substation In Izmail", False),
        ("Drone Hits Power Substation In Izmail", "Drone Hits Electric Substation In Izmail", True),
    ],
)
def test_headline_facts_tell_look_alike_events_apart(a, b, same):
    assert (report_facts(a, "").headline == report_facts(b, "").headline) is same
