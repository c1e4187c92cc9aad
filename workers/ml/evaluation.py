"""How well the topic rules do on lines an analyst labelled: `newsmon classify --eval FILE`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TopicResult:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        labelled = self.true_positives + self.false_negatives
        return self.true_positives / labelled if labelled else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass
class Evaluation:
    topics: dict[str, TopicResult]
    misses: list[dict] = field(default_factory=list)  # id, title, expected, got

    @property
    def macro_f1(self) -> float:
        return sum(r.f1 for r in self.topics.values()) / len(self.topics) if self.topics else 0.0

    def of_topics_seen(self) -> Evaluation:
        """Only the topics labelled or given at least once: a topic nobody labelled and
        nothing was given would count as a perfect one."""
        seen = {
            name: r
            for name, r in self.topics.items()
            if r.true_positives + r.false_negatives + r.false_positives
        }
        return Evaluation(seen, self.misses)


def evaluate(topic_names: list[str], labelled: list[tuple[dict, set[str], set[str]]]) -> Evaluation:
    """Score (item, expected topics, predicted topics) triples per topic; list the misses."""
    result = Evaluation({name: TopicResult() for name in topic_names})
    for item, expected, got in labelled:
        for name, scores in result.topics.items():
            scores.true_positives += name in expected and name in got
            scores.false_positives += name not in expected and name in got
            scores.false_negatives += name in expected and name not in got
        if expected != got:
            result.misses.append(
                {
                    "id": item.get("id"),
                    "title": item.get("title", ""),
                    "expected": sorted(expected),
                    "got": sorted(got),
                }
            )
    return result


@dataclass
class StoryEvaluation:
    """How entries labelled with their story were grouped: each variant should join its
    original's story, and no story should take in an entry of another."""

    joined: dict[str, list[int]] = field(default_factory=dict)  # variant kind -> [joined, total]
    false_merges: list[tuple[str, str]] = field(default_factory=list)  # two labelled stories
    missed: list[str] = field(default_factory=list)  # ids of variants left on their own

    @property
    def recall(self) -> float:
        joined = sum(j for j, _ in self.joined.values())
        total = sum(t for _, t in self.joined.values())
        return joined / total if total else 1.0


def evaluate_stories(rows: list[tuple[str, str, str, str]]) -> StoryEvaluation:
    """Score (entry id, labelled story, variant kind, assigned story id) rows; the variant
    kind of a story's first version is "original"."""
    result = StoryEvaluation()
    assigned_original = {story: got for _, story, kind, got in rows if kind == "original"}
    labelled_in: dict[str, set[str]] = {}
    for entry_id, story, kind, got in rows:
        labelled_in.setdefault(got, set()).add(story)
        if kind == "original":
            continue
        counts = result.joined.setdefault(kind, [0, 0])
        counts[1] += 1
        if got == assigned_original.get(story):
            counts[0] += 1
        else:
            result.missed.append(entry_id)
    for stories in labelled_in.values():
        ordered = sorted(stories)
        result.false_merges += [(ordered[0], other) for other in ordered[1:]]
    return result
