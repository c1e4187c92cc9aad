from __future__ import annotations

import pytest

from monitor.core.models import Entry
from workers.pipeline.normalise import normalise


@pytest.mark.parametrize(
    ("title", "summary", "clean_title", "clean_summary"),
    [
        (
            "Talks <b>resume</b>",
            "<p>Envoys met&nbsp;in Geneva.</p><p>More   soon.</p>",
            "Talks resume",
            "Envoys met in Geneva. More soon.",
        ),
        (
            "Grid hit",
            "Power was cut in Odesa. Your support keeps our reporters close to the story. "
            "Read more details here:",
            "Grid hit",
            "Power was cut in Odesa.",
        ),
        ("Headline only", "Headline only.", "Headline only", ""),
        ("Script", "<script>alert(1)</script>Text<!-- hidden --> here", "Script", "Text here"),
        ("Join", "Join our commenting forum to share your view.", "Join", ""),
        (
            "Port strike vote: turnout < 50% voids it, a margin > 5 points carries it",
            "Dockers vote on a <48-hour> stoppage; fares rise for trips < 10 km.",
            "Port strike vote: turnout < 50% voids it, a margin > 5 points carries it",
            "Dockers vote on a <48-hour> stoppage; fares rise for trips < 10 km.",
        ),
    ],
)
def test_normalise(title, summary, clean_title, clean_summary):
    result = normalise(
        Entry(id="id", feed_name="f", feed_url="u", key="k", title=title, link="", summary=summary)
    )
    assert (result.title, result.summary) == (clean_title, clean_summary)
    assert result.text == "\n".join(p for p in (clean_title, clean_summary) if p)
