"""The README and the pages under docs/ stay true to each other: the pages build with MkDocs
in strict mode (a broken link, a missing anchor or a page left out of the navigation fails),
every link in the README reaches a file, and a heading where it names one, and the README's
first-alert subscription passes the config check."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path

from monitor.ops.cli import main

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_the_docs_build_in_strict_mode_without_a_warning(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (site / "subscribing" / "index.html").exists()


def test_every_link_in_the_readme_reaches_its_file_and_heading():
    broken = []
    for target in links(README.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (README.parent / path).resolve() if path else README
        if not file.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and anchor not in anchors(file.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {path or 'README.md'}")
    assert not broken, broken


def test_the_readme_leads_to_every_page_of_the_docs():
    linked = {target.partition("#")[0] for target in links(README.read_text())}
    pages = {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")} - {"docs/index.md"}
    assert pages <= linked, f"not linked from the README: {sorted(pages - linked)}"


def test_the_readme_first_alert_subscription_passes_the_check(tmp_path, monkeypatch, capsys):
    readme = README.read_text()
    block = re.search(r"cat >> my-config/subscriptions.toml <<'EOF'\n(.*?)\nEOF\n", readme, re.S)
    # The secret's variable is set before the check, which needs it.
    assert readme.index("export FIRST_WEBHOOK_SECRET") < readme.index("newsmon check --config")
    assert main(["init", str(tmp_path / "my-config")]) == 0
    with (tmp_path / "my-config" / "subscriptions.toml").open("a") as subscriptions:
        subscriptions.write(block[1] + "\n")
    monkeypatch.setenv("FIRST_WEBHOOK_SECRET", "whsec_" + "A" * 43 + "=")
    assert main(["check", "--config", str(tmp_path / "my-config")]) == 0, capsys.readouterr()


def links(markdown: str) -> list[str]:
    """The targets of the Markdown links and images outside code blocks and code spans."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return LINK.findall(prose)


def anchors(markdown: str) -> set[str]:
    """A page's heading anchors, as GitHub names them and as MkDocs does: a link to a heading
    must work in both."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    headings = re.findall(r"^#{1,6} +(.+?) *#*$", prose, re.M)
    return {github_slug(h) for h in headings} & {mkdocs_slug(h) for h in headings}


def github_slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")


def mkdocs_slug(heading: str) -> str:  # Python-Markdown's toc.slugify
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)
