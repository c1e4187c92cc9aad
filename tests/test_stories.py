"""Stories across outlets: another outlet's report of an event joins its story; a look-alike
event (another town, day, figure, stage, office) never does. Real Redis, the real encoder."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.config import Settings
from monitor.core.models import Entry
from monitor.ops.redis_server import connect
from monitor.poller.loop import Poller
from tests.helpers import (
    REPO,
    RSS,
    SECRET,
    load,
    normalised_entry,
    polled_before,
    run_worker,
    write_config,
)
from tests.stories import Item, rss
from workers.ml import pair_model
from workers.ml.encoder import shipped
from workers.ml.evaluation import evaluate_stories
from workers.ml.pair_model import PairModel
from workers.pipeline.dedupe import Deduper
from workers.pipeline.facts import (
    WITHIN_SCRIPT,
    Conflict,
    conflicts,
    report_facts,
)
from workers.pipeline.fingerprint import Doc, DuplicateReason, fingerprint, pack_doc, unpack_doc
from workers.pipeline.meaning import FEATURES, Meaning, pair_features

WINDOW = 72 * 3600
NEAR = 0.6
STORY = pair_model.shipped(Settings().story_probability)


def report(feed: str, key: str, title: str, summary: str = "") -> Entry:
    link = f"https://{feed}.example/{key}"
    return normalised_entry(feed=feed, key=key, title=title, summary=summary, link=link)


def vectors(entries: list[Entry]) -> list:
    return [shipped().vector(e.text) for e in entries]


def stories_of(connection, *entries: Entry) -> list[tuple[str, DuplicateReason | None]]:
    deduper = Deduper(connection, WINDOW, NEAR, STORY)
    checked = deduper.check(list(entries), vectors(list(entries)))
    return [(e.story_id, d.reason if d else None) for e, d in checked]


HARBOUR = report(
    "wire", "1", "Drone attack on Chornomorsk harbour kills two dock workers",
    "Regional officials said a grain terminal was set on fire in the overnight attack.",
)  # fmt: skip
HARBOUR_REWORDED = report(
    "daily", "9", "Two dock workers killed as drones hit Chornomorsk port overnight",
    "The attack set a grain terminal ablaze, according to the regional administration.",
)  # fmt: skip


def test_another_outlets_report_joins_the_story(connection):
    (first, _), (second, reason) = stories_of(connection, HARBOUR, HARBOUR_REWORDED)
    assert second == first and reason is DuplicateReason.STORY


def test_a_shortened_headline_with_a_summary_joins_the_headline_alone(connection):
    alone = report(
        "blog", "a", "Moldovan border police close two crossings to lorries after fuel smuggling "
        "ring is uncovered near Otaci"
    )  # fmt: skip
    later = report(
        "blog", "b", "Moldovan border police close two crossings to lorries",
        "Officers found diesel hidden in false tanks at the Otaci checkpoint, the service said.",
    )  # fmt: skip
    (first, _), (second, reason) = stories_of(connection, alone, later)
    assert second == first and reason is not None


@pytest.mark.parametrize(
    "other",
    [
        # another town
        ("Drone attack on Izmail harbour kills two dock workers",
         "Regional officials said a grain terminal was set on fire in the overnight attack."),
        # another figure
        ("Drone attack on Chornomorsk harbour kills five dock workers",
         "Regional officials said a grain terminal was set on fire in the overnight attack."),
        # another day
        ("Drone attack on Chornomorsk harbour on Friday kills two dock workers",
         "Regional officials said a grain terminal was set on fire in the overnight attack."),
    ],
)  # fmt: skip
def test_a_look_alike_event_starts_a_story_of_its_own(connection, other):
    day = report("wire", "0", "Drone attack on Chornomorsk harbour on Tuesday kills two dock "
                 "workers", HARBOUR.summary)  # fmt: skip
    first = day if "Friday" in other[0] else HARBOUR
    (story, _), (other_story, reason) = stories_of(connection, first, report("daily", "2", *other))
    assert other_story != story and reason is None


def test_stages_and_offices_tell_events_apart():
    first = report_facts("Parliament passes media law in first reading", "")
    second = report_facts("Parliament passes media law in second reading", "")
    assert conflicts(first, second)
    president = report_facts("Finnish president arrives in Kyiv for security talks", "")
    premier = report_facts("Finland's prime minister visits Kyiv for security talks", "")
    assert conflicts(president, premier)
    assert not conflicts(president, report_facts("Finnish president in Kyiv", ""))


def test_two_workers_with_two_reports_of_one_event_make_one_story(connection, redis_url):

    results: dict[str, str] = {}
    barrier = threading.Barrier(2)
    vectors_of = dict(zip(("a", "b"), vectors([HARBOUR, HARBOUR_REWORDED]), strict=True))

    def work(name: str, entry: Entry) -> None:
        client = connect(redis_url)
        deduper = Deduper(client, WINDOW, NEAR, STORY)
        barrier.wait()
        [(checked, _)] = deduper.check([entry], [vectors_of[name]])
        results[name] = checked.story_id

    threads = [
        threading.Thread(target=work, args=("a", HARBOUR)),
        threading.Thread(target=work, args=("b", HARBOUR_REWORDED)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["a"] == results["b"]


def test_a_doc_with_its_meaning_reads_back_as_written():
    [vector] = vectors([HARBOUR])
    doc = Doc.of("st_x", fingerprint(HARBOUR).with_meaning(HARBOUR, vector))
    assert unpack_doc(pack_doc(doc)) == doc


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=600))
def test_any_feed_text_reads_as_facts(title, summary):
    facts = report_facts(title, summary)
    assert not conflicts(facts, facts)


FIXTURES = REPO / "tests" / "fixtures"
# (part, reword recall floor, look-alike pairs merged at most, other pairs merged at most):
# measured by bench/stories.py with the pair model at [dedupe] story_probability (50/60, 2, 1;
# 31/40, 3, 0; 55/60, 2, 1: an overnight strike on a power plant joined the night's count of
# drones shot down, which shares its words and names no other fact).
STORY_FLOORS = [
    ("outlets", "tune", 0.8, 2, 1),
    ("outlets", "test2", 0.75, 3, 0),
    ("blind", "blind", 0.8, 2, 1),
]


@pytest.mark.parametrize(("file", "split", "floor", "merges", "others"), STORY_FLOORS)
def test_labelled_reports_join_their_stories(connection, file, split, floor, merges, others):
    rows = [json.loads(line) for line in (FIXTURES / f"{file}.jsonl").read_text().splitlines()]
    rows = sorted(
        (r for r in rows if r["split"] == split), key=lambda r: r["variant"] != "original"
    )
    entries = [report(r["link"].split("/")[2], r["id"], r["title"], r["summary"]) for r in rows]
    checked = Deduper(connection, WINDOW, NEAR, STORY).check(entries, vectors(entries))
    result = evaluate_stories(
        [
            (r["id"], r["story"], r["variant"], e.story_id)
            for r, (e, _) in zip(rows, checked, strict=True)
        ]
    )
    joined, total = result.joined["reword"]
    assert joined / total >= floor, result.missed
    lookalikes = {r["story"] for r in rows if r["kind"] == "lookalike"}
    assert len([m for m in result.false_merges if set(m) <= lookalikes]) <= merges
    assert len([m for m in result.false_merges if not set(m) <= lookalikes]) <= others


def test_two_outlets_one_event_one_alert_and_the_story_lists_both(
    tmp_path, connection, http_server, redis_url, start_process
):
    wire = Item("harbour", "w1", HARBOUR.title, HARBOUR.summary, "https://wire.example/w1")
    daily = Item(
        "harbour", "d1", HARBOUR_REWORDED.title, HARBOUR_REWORDED.summary, "https://d.example/1"
    )
    http_server.route("/wire.xml", (200, RSS, rss([wire])))
    http_server.route("/daily.xml", (200, RSS, rss([daily])))
    http_server.route("/hook", (204, {}, b""))
    directory = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "wire", "url": http_server.url_for("/wire.xml")},
            {"name": "daily", "url": http_server.url_for("/daily.xml")},
        ],
        subscriptions=[
            {"id": "all", "url": http_server.url_for("/hook"), "topics": ["*"], "secret": SECRET}
        ],
    )
    config = load(directory)
    polled_before(connection, config.feeds)
    poller = Poller(config, connection)
    poller.poll_feeds(config.feeds[:1])
    run_worker(config, connection)
    with structlog.testing.capture_logs() as logs:
        poller.poll_feeds(config.feeds[1:])
        run_worker(config, connection)

    assert len([r for r in http_server.requests if r.path == "/hook"]) == 1
    [merge] = [e for e in logs if e["event"] == "entry.duplicate"]
    assert merge["reason"] == "story" and merge["similarity"] >= STORY.threshold
    # Why it joined, for an operator to audit: the probability (its similarity, kept once)
    # and the deciding features.
    assert {"cosine", "word_overlap"} & set(merge["why"]) and "probability" not in merge["why"]
    listing = start_process(
        "stories", "--config", str(directory), "--json", env={"REDIS_URL": redis_url}
    )
    assert listing.finish() == 0
    [story] = [json.loads(line) for line in listing.log_path.read_text().splitlines()]
    assert story["outlets"] == ["wire", "daily"] and len(story["entries"]) == 2
    assert story["title"] == HARBOUR.title
    [(joined, why)] = story["why"].items()
    assert joined in story["entries"] and merge["duplicate_of"] != joined
    of, similarity = merge["duplicate_of"], round(merge["similarity"], 3)
    assert why == {"reason": "story", "of": of, "similarity": similarity, **merge["why"]}
    table = start_process("stories", "--config", str(directory), env={"REDIS_URL": redis_url})
    assert table.finish() == 0
    assert f"{joined} joined {why['of']} (story): similarity" in table.log_path.read_text()


def test_an_exact_repeat_needs_no_sentence_vector(connection):
    deduper = Deduper(connection, WINDOW, NEAR, STORY)
    deduper.check([HARBOUR], vectors([HARBOUR]))
    again = report("wire", "1-again", HARBOUR.title, HARBOUR.summary)
    batch = [again, HARBOUR_REWORDED, HARBOUR]
    assert deduper.repeats(batch, [fingerprint(e) for e in batch]) == [True, False, False]
    [(_, duplicate)] = deduper.check([again], [None])
    assert duplicate is not None and duplicate.reason is DuplicateReason.TEXT


# The pair model and what it reads: a pair's features, the facts that keep two reports
# apart before it is asked, and Russian and Ukrainian reports joining their English story.

RUSSIAN = report(
    "rus", "r1", "Атака дронов на порт Черноморска: погибли двое портовых рабочих",
    "Региональные власти сообщили, что при ночной атаке загорелся зерновой терминал.",
)  # fmt: skip
UKRAINIAN = report(
    "ukr", "u1", "Атака дронів на порт Чорноморська: загинули двоє портових працівників",
    "Регіональна влада повідомила, що під час нічної атаки зайнявся зерновий термінал.",
)  # fmt: skip
BUDGET = report("rus", "r2", "Парламент принял бюджет на следующий год после долгих дебатов")


def meaning(entry: Entry) -> Meaning:
    return Meaning.of(entry, shipped().vector(entry.text))


def test_the_shipped_model_reads_every_feature_and_round_trips_as_json():
    model = pair_model.shipped()
    assert model.features == tuple(FEATURES)
    assert PairModel.from_json(model.to_json()) == dataclasses.replace(
        model, bias=round(model.bias, 5), weights=tuple(round(w, 5) for w in model.weights)
    )
    assert pair_model.shipped(0.5).threshold == 0.5  # the operator's story_probability


def test_a_model_file_of_another_version_is_refused():
    data = json.loads(pair_model.shipped().to_json())
    with pytest.raises(ValueError, match="pair model version 2, expected 1"):
        PairModel.from_json(json.dumps({**data, "version": 2}))


def test_a_translation_is_held_to_the_lower_bar_and_only_a_translation():
    model = dataclasses.replace(
        pair_model.shipped(), bias=0.0, threshold=0.9, threshold_across_scripts=0.5
    )
    features = dict.fromkeys(FEATURES, 0.0)  # with no bias: probability 0.5 exactly
    assert model.joins(features) is None
    assert model.joins(features, translation=True) == 0.5


def features_of(a: Meaning, b: Meaning) -> dict[str, float]:
    return pair_features(a, b, conflicts(a.facts, b.facts))


def test_features_of_a_pair():
    english, russian = meaning(HARBOUR), meaning(RUSSIAN)
    later = dataclasses.replace(
        HARBOUR_REWORDED, published=datetime(2026, 5, 1, 12, tzinfo=UTC)
    )  # fmt: skip
    first = dataclasses.replace(HARBOUR, published=later.published - timedelta(hours=3))
    across = features_of(russian, english)
    assert across["across_scripts"] == 1 and across["cosine_across_scripts"] == across["cosine"]
    same = features_of(meaning(first), meaning(later))
    assert same["across_scripts"] == 0 and same["cosine_across_scripts"] == 0
    assert same["hours_apart"] == pytest.approx(1.386, abs=0.001)  # log(1 + 3)
    assert same["same_outlet"] == 0 and same["headline_only"] == 0
    assert same["shared_facts"] > 0  # Chornomorsk, two


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        ("Drone hits substation in Odesa region", "Drone hits substation in Sumy region",
         Conflict.PLACE),
        ("Shelling kills two in Nikopol", "Two men killed in Marhanets shelling", Conflict.NAME),
        ("At least eight killed in Odesa strike", "Odesa strike: death toll rises to nine",
         Conflict.COUNT),
        ("Russia says it downed 27 drones overnight", "Russia says it downed 41 drones overnight",
         Conflict.NUMBERS),
        ("Rivne nuclear plant's unit 3 taken offline", "Rivne nuclear plant's unit 4 taken offline",
         Conflict.TEMPLATE),
    ],
)  # fmt: skip
def test_the_facts_that_tell_two_reports_apart(a, b, conflict):
    found = conflicts(report_facts(a, ""), report_facts(b, ""))
    assert conflict in found
    # An updated count is evidence the model weighs; the others keep two reports apart.
    assert bool(found & WITHIN_SCRIPT) is (conflict is not Conflict.COUNT)


def test_russian_and_ukrainian_reports_join_their_english_story(connection):
    entries = [HARBOUR, RUSSIAN, UKRAINIAN, BUDGET]
    deduper = Deduper(connection, WINDOW, NEAR, STORY)
    (english, _), (russian, joined), (ukrainian, _), (budget, apart) = deduper.check(
        entries, vectors(entries)
    )
    assert russian.story_id == ukrainian.story_id == english.story_id
    assert joined is not None and joined.similarity >= 0.7
    assert budget.story_id != english.story_id and apart is None


def test_two_english_look_alikes_never_chain_through_a_translation(connection):
    """Once a story has an English report, another English report joins it only through an
    English one, at the bar within a script: never through the Russian report's lower bar."""
    look_alike = report(
        "daily", "9", "Drone attack on Pivdennyi harbour kills two dock workers",
        "Regional officials said a grain terminal was set on fire in the overnight attack.",
    )  # fmt: skip
    entries = [HARBOUR, RUSSIAN, look_alike]
    deduper = Deduper(connection, WINDOW, NEAR, STORY)
    (english, _), (russian, _), (other, _) = deduper.check(entries, vectors(entries))
    assert russian.story_id == english.story_id
    assert other.story_id != english.story_id
