"""Commands that find, add and try feeds: `newsmon feeds discover|import|export`,
`newsmon check --online`, and which feeds `newsmon poll --once [FEED]` polls."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable
from pathlib import Path

from monitor.core.config import Config, ConfigError, load_config
from monitor.core.config.reading import printable
from monitor.core.models import Feed
from monitor.core.redact import redact_url
from monitor.ops import CommandError
from monitor.ops.admin import counted
from monitor.ops.discovery import DiscoveryError, discover
from monitor.ops.feeds_toml import NewFeed, append_tables, feed_table, plan_additions
from monitor.ops.online_check import check_online
from monitor.ops.opml import OpmlError, read_opml, write_opml


def add_feed_actions(feeds: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    """`newsmon feeds ACTION`; `newsmon feeds` alone lists the feeds' health."""
    actions = feeds.add_subparsers(dest="action")

    def action(
        name: str, help_text: str, handler: Callable[[argparse.Namespace, Config], int]
    ) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text, parents=[parent])
        sub.set_defaults(handler=handler)
        return sub

    found = action("discover", "the feeds a page links to, as a feeds.toml snippet", discover_feeds)
    found.add_argument("url", metavar="URL", help="a site's or an article's page, or a feed")
    imported = action(
        "import", "append an OPML file's feeds to feeds.toml (folders become tags)", import_feeds
    )
    imported.add_argument("file", metavar="FILE.opml", type=Path)
    action("export", "the feeds as OPML 2.0 on stdout (tags become folders)", export_feeds)


def discover_feeds(args: argparse.Namespace, config: Config) -> int:
    try:
        found = discover(args.url, config.settings)
    except DiscoveryError as exc:
        raise CommandError(f"{redact_url(args.url)}: {exc}") from None
    if not found:
        print(
            f"{redact_url(args.url)}: no feed found (the page is no live blog and links to no "
            'RSS, Atom or JSON Feed with <link rel="alternate">)'
        )
        return 1
    for feed in found:
        print(f"{feed.kind:<9}  {feed.url}  {printable(feed.title)}")
    additions = plan_additions([NewFeed(f.title, f.url) for f in found], config.feeds)
    print(f"\n# for {config.directory / 'feeds.toml'}:")
    print("\n".join(feed_table(name, feed) for name, feed in additions.added), end="")
    for reason in additions.skipped:
        print(f"# skipped {printable(reason)}")
    return 0


def import_feeds(args: argparse.Namespace, config: Config) -> int:
    try:
        new_feeds = read_opml(args.file.read_bytes())
    except OSError as exc:
        raise CommandError(f"{args.file}: cannot read it ({exc.strerror})") from None
    except OpmlError as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    additions = plan_additions(new_feeds, config.feeds)
    path = config.directory / "feeds.toml"
    if additions.added:
        before = path.read_bytes()
        tables = [feed_table(name, feed) for name, feed in additions.added]
        append_tables(path, f"Imported from {args.file.name}", tables)
        _keep_loadable(config, path, before)
    for name, feed in additions.added:
        tags = f"  tags {', '.join(map(printable, feed.tags))}" if feed.tags else ""
        print(f"added {name}  {feed.url}{tags}")
    for reason in additions.skipped:
        print(f"skipped {printable(reason)}")
    print(
        f"{path}: {counted(len(additions.added), 'feed')} added, {len(additions.skipped)} skipped"
    )
    return 0


def _keep_loadable(config: Config, path: Path, before: bytes) -> None:
    """The folder loads with the appended feeds, else the file goes back as it was: a
    feeds.toml that says `feeds = [...]` inline cannot take `[[feeds]]` tables."""
    try:
        load_config(config.directory)
    except ConfigError as exc:
        path.write_bytes(before)
        problems = "; ".join(str(problem) for problem in exc.problems)
        raise CommandError(
            f"{path} would not load with the imported feeds ({problems}); it is unchanged. "
            "Write its feeds as [[feeds]] tables, then import again"
        ) from None


def export_feeds(args: argparse.Namespace, config: Config) -> int:
    sys.stdout.write(write_opml(config.feeds))
    return 0


def show_online(config: Config) -> int:
    """What each feed answered; exit 1 when any gave no feed."""
    answers = check_online(config)
    for answer in answers:
        kind = answer.kind if answer.ok else "no feed"
        items = counted(answer.items, "item") if answer.items is not None else ""
        detail = "  ".join(filter(None, (items, answer.problem)))
        print(f"{answer.feed:<20} {answer.status or '-':<4} {kind:<10} {detail}")
    failed = sum(not answer.ok for answer in answers)
    print(f"{counted(len(answers) - failed, 'feed')} answered with a feed, {failed} did not")
    return 1 if failed else 0


def feeds_to_poll(config: Config, name: str | None) -> list[Feed]:
    """Every feed (`newsmon poll --once`), or the one named (`newsmon poll --once FEED`)."""
    if name is None:
        return list(config.feeds)
    if feeds := [feed for feed in config.feeds if feed.name == name]:
        return feeds
    names = [feed.name for feed in config.feeds]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "`newsmon feeds export` lists their names"
    raise CommandError(f"no feed named {name!r} in {config.directory / 'feeds.toml'}; {hint}")
