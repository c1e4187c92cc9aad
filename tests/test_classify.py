"""Topic rules: the shipped topics on fixtures written for them, and the classify command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from monitor.core.config import load_config
from monitor.core.models import Entry, Topic
from tests.helpers import REPO
from tests.stories import DAILY_ITEMS, ROUND_TWO_LIVEBLOG, STORY_TOPICS, WIRE_ITEMS
from workers.pipeline.classify import Classifier, stem
from workers.pipeline.normalise import normalise


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    config = load_config(REPO / "config")
    return Classifier(config.topics, config.topic_model)


@pytest.mark.parametrize(
    "item", [*ROUND_TWO_LIVEBLOG, *WIRE_ITEMS, *DAILY_ITEMS], ids=lambda i: i.guid
)
def test_fixture_stories_get_their_topics(shipped, item):
    text = normalise(
        Entry(
            id="i",
            feed_name="f",
            feed_url="u",
            key="k",
            title=item.title,
            link=item.link,
            summary=item.summary,
        )
    ).text
    assert set(shipped.topics_of(text)) == set(STORY_TOPICS[item.story])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sales staff on the front line of retail face long queues", ()),
        ("Economic health of the eurozone improves", ()),
        ("Energy drink maker opens new plant", ()),
        ("Shelling intensifies along the front-line near Pokrovsk", ("frontline",)),
        ("Shelling intensifies along the frontline near Pokrovsk", ("frontline",)),
        ("Envoys resume peace talks in Istanbul", ("diplomacy",)),
        ("Cholera outbreak spreads in camps for displaced families", ("health", "humanitarian")),
    ],
)
def test_traps_and_variants(shipped, text, expected):
    assert set(shipped.topics_of(text)) == set(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Written for newsmon: reports in Russian and Ukrainian, in other case forms than the
        # terms of topics.toml.
        ("Ночью армия отразила атаку дронов, обстрелы продолжаются", ("frontline",)),
        ("Після обстрілу рятувальники розбирають завали житлового будинку", ("humanitarian",)),
        ("Делегации возобновили переговоры о прекращении огня", ("diplomacy",)),
        ("Верховна Рада проголосувала за відставку уряду", ("politics",)),
        ("На нефтебазе под Самарой третий день горят нефтепродукты", ("energy",)),
        ("Новый фильм режиссера покажут на Каннском кинофестивале", ("culture",)),
        ("Футбольный клуб подписал контракт с новым тренером", ()),
    ],
)
def test_russian_and_ukrainian_reports_get_their_topics(text, expected):
    config = load_config(REPO / "config")
    assert set(Classifier(config.topics).topics_of(text)) == set(expected)


@pytest.mark.parametrize(
    "forms",
    [
        ("переговоры", "переговорах", "переговоров", "переговори"),
        ("україна", "україни", "україною", "україні"),
        ("обстрел", "обстрела", "обстрелом", "обстрелы"),
    ],
)
def test_cyrillic_case_forms_meet_at_one_stem(forms):
    assert len({stem(word) for word in forms}) == 1


def test_ignore_masks_only_its_own_topic():
    classifier = Classifier(
        (
            Topic("health", 1, {"health": 1}, ("economic health",)),
            Topic("economy", 1, {"economic health": 1}),
        )
    )
    assert classifier.topics_of("The economic health of Europe") == ("economy",)
    assert classifier.topics_of("Health services in Europe") == ("health",)


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("Villages evacuated overnight", "evacuate"),
        ("Rescuers evacuating residents", "evacuate"),
        ("Town shelled again", "shelling"),
        ("Talks planned for Friday", "plan"),
        ("Drones over the city", "drone"),
        ("Casualties rise", "casualty"),
        ("Front-line villages", "front line"),
    ],
)
def test_a_term_matches_its_inflected_forms(text, term):
    topic = Topic("t", 1, {term: 1})
    assert Classifier((topic,)).explain(text)[0].matched == {term: 1}


def test_terms_that_stem_alike_count_once_at_the_larger_weight():
    topic = Topic("t", 1, {"wounded": 0.5, "wounding": 1.0, "wounds": 0.25})
    assert Classifier((topic,)).explain("Two people wounded")[0].score == 1.0


def test_classify_command_explains_matches():
    lines = [
        {"id": "1", "title": "Foreign ministers meet for peace talks", "summary": "In Paris."},
        {"id": "2", "title": "Storm brings snow to the Alps", "summary": ""},
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "classify",
            "--explain",
            "--config",
            str(REPO / "config"),
        ],
        input="\n".join(json.dumps(line) for line in lines) + "\nnot json\n",
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )  # no Redis, no secrets
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["1", "2"]
    assert out[0]["topics"] == ["diplomacy"]
    # "talk" and "peace" are inside "peace talks": only the longer term counts.
    matched = out[0]["explain"]["diplomacy"]["matched"]
    assert matched == {"foreign minister": 2.0, "meet": 1.0, "peace talk": 2.0, "paris": 0.5}
    assert out[1]["topics"] == [] and out[1]["explain"] == {}
    assert result.returncode == 1 and "stdin line 3" in result.stderr


def test_classify_eval_scores_labelled_lines(tmp_path):
    items = [*ROUND_TWO_LIVEBLOG, *WIRE_ITEMS, *DAILY_ITEMS]
    labelled = [
        {
            "id": i.guid,
            "title": i.title,
            "summary": i.summary,
            "topics": list(STORY_TOPICS[i.story]),
        }
        for i in items
    ]
    labelled.append(
        {
            "id": "wrong",
            "title": "Envoys resume peace talks in Istanbul",
            "summary": "",
            "topics": ["culture"],
        }
    )  # a deliberately wrong label
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in labelled))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "classify",
            "--config",
            str(REPO / "config"),
            "--eval",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"and {len(labelled)} lines, 1 missed" in out
    assert "miss wrong: expected ['culture'], got ['diplomacy']" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:9]}
    assert rows["culture"][:3] == ["1.000", "0.667", "0.800"]  # 2 of 3 culture labels found
    assert rows["diplomacy"][0] == "0.800"  # 4 of the 5 lines said to be diplomacy
    assert "macro-F1 0.9" in out


def test_classify_eval_measures_only_the_topics_it_saw(tmp_path):
    """A topic no line was labelled with and none was given is not a perfect one."""
    path = tmp_path / "labelled.jsonl"
    lines = [
        {"id": "a", "title": "Envoys resume peace talks in Istanbul", "topics": ["diplomacy"]},
        {"id": "b", "title": "Striker scores twice in the cup final", "topics": []},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    command = ["classify", "--config", str(REPO / "config"), "--eval", str(path)]
    result = subprocess.run(
        [sys.executable, "-m", "monitor", *command], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:9]}
    assert rows["diplomacy"] == ["1.000", "1.000", "1.000", "1"]
    assert rows["health"] == ["-", "-", "-", "0"]
    assert result.stdout.splitlines()[9] == "macro-F1 1.000 over 1 topic and 2 lines, 0 missed"
