"""The pair model and what it reads: a pair's features, the facts that keep two reports
apart before it is asked, and Russian and Ukrainian reports joining their English story
through the real dedupe step."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.test_stories import HARBOUR, HARBOUR_REWORDED, NEAR, STORY, WINDOW, report, vectors
from workers.ml import pair_model
from workers.ml.encoder import shipped
from workers.ml.pair_model import PairModel
from workers.pipeline.dedupe import Deduper
from workers.pipeline.facts import WITHIN_SCRIPT, Conflict, conflicts, report_facts
from workers.pipeline.meaning import FEATURES, Meaning, pair_features

RUSSIAN = report(
    "rus", "r1", "Атака дронов на порт Черноморска: погибли двое портовых рабочих",
    "Региональные власти сообщили, что при ночной атаке загорелся зерновой терминал.",
)  # fmt: skip
UKRAINIAN = report(
    "ukr", "u1", "Атака дронів на порт Чорноморська: загинули двоє портових працівників",
    "Регіональна влада повідомила, що під час нічної атаки зайнявся зерновий термінал.",
)  # fmt: skip
BUDGET = report("rus", "r2", "Парламент принял бюджет на следующий год после долгих дебатов")


def meaning(entry) -> Meaning:
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


def test_features_of_a_pair():
    english, russian = meaning(HARBOUR), meaning(RUSSIAN)
    later = dataclasses.replace(
        HARBOUR_REWORDED, published=datetime(2026, 5, 1, 12, tzinfo=UTC)
    )  # fmt: skip
    first = dataclasses.replace(HARBOUR, published=later.published - timedelta(hours=3))
    across = pair_features(russian, english)
    assert across["across_scripts"] == 1 and across["cosine_across_scripts"] == across["cosine"]
    same = pair_features(meaning(first), meaning(later))
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
    assert joined is not None and joined.why["probability"] >= 0.7
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
