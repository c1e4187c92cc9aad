#!/usr/bin/env python3
"""Build newsmon's corpus of real outlets' feed items from public GitHub archives.

The items stay outside the repository: this script reads the archives' git history
(bare mirrors as `fetch` lays them out, or ordinary clones) at the commits and paths
recorded in bench/corpus/provenance.json and writes one JSON object a line.

    python bench/corpus/build.py --mirrors /work/.mirror --out /work/corpus-data/items.jsonl

`--plan` chooses the commits afresh (sampling each feed's history inside the window
set in provenance.json), rebuilds, and rewrites provenance.json with the commits
read and the number of items each file gave.  Without `--plan` the build uses only
what provenance.json records, so the same mirrors give the same file.

Standard library only.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import datetime as dt
import email.utils
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
PROVENANCE = os.path.join(HERE, "provenance.json")

# Reserved for independent evaluation: never part of any corpus.
RESERVED_FROM = dt.datetime(2026, 8, 10, tzinfo=dt.UTC)
RESERVED_UNTIL = dt.datetime(2026, 8, 26, tzinfo=dt.UTC)  # exclusive: 25 Aug inclusive
FORBIDDEN_REPOS = {"1902139/lede"}


# ---------------------------------------------------------------- git access
class Repo:
    """Read-only access to one archive's git directory."""

    def __init__(self, mirrors: str, name: str):
        owner_repo = name.replace("/", "+")
        short = name.split("/", 1)[1]
        candidates = [
            os.path.join(mirrors, owner_repo, "repo"),
            os.path.join(mirrors, owner_repo),
            os.path.join(mirrors, short),
            os.path.join(mirrors, short + ".git"),
            os.path.join(mirrors, owner_repo + ".git"),
        ]
        self.git_dir = None
        for c in candidates:
            for g in (c, os.path.join(c, ".git")):
                if os.path.isfile(os.path.join(g, "HEAD")) and os.path.isdir(
                    os.path.join(g, "objects")
                ):
                    self.git_dir = g
                    break
            if self.git_dir:
                break
        if not self.git_dir:
            raise SystemExit(f"no git directory for {name} under {mirrors} (tried {candidates})")
        self.name = name
        self._batch = None

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", self.git_dir, *args], check=True, capture_output=True
        ).stdout.decode("utf-8", "replace")

    def log(
        self, path: str, ref: str = "HEAD", since: str | None = None, until: str | None = None
    ) -> list[tuple[str, dt.datetime]]:
        args = ["log", "--format=%H %cI", ref]
        if since:
            args.append(f"--since={since}")
        if until:
            args.append(f"--until={until}")
        out = self.git(*args, "--", path)
        res = []
        for line in out.splitlines():
            sha, when = line.split()
            res.append((sha, parse_iso(when)))
        return res

    def commit_time(self, sha: str) -> dt.datetime:
        return parse_iso(self.git("show", "-s", "--format=%cI", sha).strip())

    def show(self, sha: str, path: str) -> bytes | None:
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "--git-dir", self.git_dir, "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        self._batch.stdin.write(f"{sha}:{path}\n".encode())
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().decode()
        if header.endswith("missing\n"):
            return None
        size = int(header.split()[2])
        data = self._batch.stdout.read(size)
        self._batch.stdout.read(1)
        return data


# ---------------------------------------------------------------- normalising
def parse_iso(s: str) -> dt.datetime:
    s = s.strip().replace("Z", "+00:00")
    d = dt.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d.astimezone(dt.UTC)


def parse_date(s: str | None) -> tuple[dt.datetime | None, str]:
    """Return (datetime UTC, precision) where precision is 'time', 'day' or 'none'."""
    if not s or not s.strip():
        return None, "none"
    s = s.strip()
    d = None
    try:
        d = email.utils.parsedate_to_datetime(s)
    except (TypeError, ValueError, IndexError):
        try:
            d = parse_iso(s)
        except ValueError:
            return None, "none"
    if d is None:
        return None, "none"
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    d = d.astimezone(dt.UTC)
    if d.year < 2000:
        return None, "none"
    # Scraped feeds put a bare date at midnight or noon: no time of day.
    local = email.utils.parsedate_to_datetime(s) if re.search(r"[A-Za-z]{3},", s) else None
    if local is not None and (local.hour, local.minute, local.second) in ((0, 0, 0), (12, 0, 0)):
        return d, "day"
    return d, "time"


def iso(d: dt.datetime) -> str:
    return d.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


TAG = re.compile(r"<[^>]+>")
WS = re.compile(r"\s+")


def clean_text(s: str | None) -> str:
    if not s:
        return ""
    for _ in range(2):  # some feeds escape twice (&amp;quot;)
        s = html.unescape(s)
    s = TAG.sub(" ", s)
    s = re.sub(r"<[a-zA-Z/][^>]*$", " ", s)  # a tag cut off by the archive's 300-character limit
    s = html.unescape(s)
    return WS.sub(" ", s).strip()


DROP_PARAM = re.compile(r"^(utm_|at_)", re.I)


def canonical_link(link: str | None) -> str:
    if not link:
        return ""
    link = html.unescape(html.unescape(link.strip()))
    try:
        u = urllib.parse.urlsplit(link)
    except ValueError:
        return link
    q = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)
        if not DROP_PARAM.match(k)
    ]
    path = u.path
    while path.endswith("/") and len(path) > 0:
        path = path[:-1]
    return urllib.parse.urlunsplit(
        (u.scheme.lower(), u.netloc.lower(), path, urllib.parse.urlencode(q), "")
    )


def is_site_root(link: str) -> bool:
    """A link to a home page (Meduza's scraped items) says nothing about the item."""
    u = urllib.parse.urlsplit(link)
    return not link or (u.path in ("", "/") and not u.query)


def norm_title(t: str) -> str:
    # Russian writes ё as е as often as not: one spelling, so the titles dedupe.
    t = t.lower().replace("ё", "е")
    t = re.sub(r"[^\w]+", " ", t)
    return WS.sub(" ", t).strip()


CYR = re.compile(r"[\u0400-\u04ff]")
LAT = re.compile(r"[A-Za-z]")
HEB = re.compile(r"[\u0590-\u05ff]")
ARA = re.compile(r"[\u0600-\u06ff]")
UK_ONLY = re.compile(r"[іїєґІЇЄҐ]")
RU_ONLY = re.compile(r"[ыэъёЫЭЪЁ]")


def detect_lang(text: str, declared: str) -> str:
    counts = {
        "cyr": len(CYR.findall(text)),
        "lat": len(LAT.findall(text)),
        "heb": len(HEB.findall(text)),
        "ara": len(ARA.findall(text)),
    }
    script = max(counts, key=counts.get)
    if counts[script] == 0:
        return declared
    if script == "cyr":
        uk, ru = len(UK_ONLY.findall(text)), len(RU_ONLY.findall(text))
        if uk and not ru:
            return "uk"
        if ru and not uk:
            return "ru"
        if uk and ru:
            return "uk" if uk > ru else "ru"
        return declared if declared in ("uk", "ru") else "ru"
    if script == "heb":
        return "he"
    if script == "ara":
        return "ar"
    return declared if declared not in ("uk", "ru", "he", "ar", "") else "en"


# ---------------------------------------------------------------- readers
def read_ndjson(data: bytes):
    """Parse newline-delimited JSON, tolerating two objects run together on a line."""
    dec = json.JSONDecoder()
    text = data.decode("utf-8", "replace")
    for line in text.splitlines():
        line = line.strip()
        pos = 0
        while pos < len(line):
            try:
                obj, end = dec.raw_decode(line, pos)
            except json.JSONDecodeError:
                break
            yield obj
            pos = end
            while pos < len(line) and line[pos] in " \t,":
                pos += 1


def read_rss(data: bytes):
    """Items of an RSS 2.0 document: (channel dict, list of item dicts)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return {}, []
    ch = root.find("channel")
    if ch is None:
        return {}, []
    channel = {
        "title": (ch.findtext("title") or "").strip(),
        "language": (ch.findtext("language") or "").strip().lower(),
    }
    items = []
    for it in ch.findall("item"):
        items.append(
            {
                "title": it.findtext("title") or "",
                "description": it.findtext("description") or "",
                "link": it.findtext("link") or it.findtext("guid") or "",
                "pubDate": it.findtext("pubDate") or "",
            }
        )
    return channel, items


# ---------------------------------------------------------------- sources
def window_of(prov) -> tuple[dt.datetime, dt.datetime]:
    """The corpus window, or a source's own window when it sets one (an archive outside the
    common weeks, kept for its language)."""
    w = prov["window"]
    return parse_iso(w["from"]), parse_iso(w["until"])


def plan_ndjson_weekly(repo: Repo, src: dict, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """chemodakov/rss-archive: weekly append-only files; read each at its last commit."""
    files = []
    for path in src["paths"]:
        hist = repo.log(path)
        # A file that grew past 4 MiB is absent from the snapshot from then on: read it at the
        # last commit that still holds it and record the commits whose additions are lost.
        missed = []
        while hist and repo.show(hist[0][0], path) is None:
            missed.append(hist.pop(0))
        if not hist:
            print(
                f"  {path}: absent at every commit (>= 4 MiB in the snapshot); skipped",
                file=sys.stderr,
            )
            continue
        f = {
            "path": path,
            "commit": hist[0][0],
            "first_seen_commits": [[s, iso(t)] for s, t in reversed(hist)],
        }
        if missed:
            print(
                f"  {path}: absent from {len(missed)} newest commits (>= 4 MiB); read at "
                f"{hist[0][0][:10]}",
                file=sys.stderr,
            )
            f["missed_commits"] = [[s, iso(t)] for s, t in reversed(missed)]
        files.append(f)
    return files


def recorded_blob(repo: Repo, f: dict) -> bytes:
    blob = repo.show(f["commit"], f["path"])
    if blob is None:
        raise SystemExit(f"{repo.name}@{f['commit']}:{f['path']} missing from the mirror")
    return blob


class Sightings:
    """A file's recorded commits in time order: the first at or after an item's time is the
    snapshot that first held it."""

    def __init__(self, f: dict):
        self.commits = [(s, parse_iso(t)) for s, t in f["first_seen_commits"]]
        self.times = [t for _, t in self.commits]

    def first_at_or_after(self, when: dt.datetime | None) -> tuple[str, dt.datetime] | None:
        i = bisect.bisect_left(self.times, when) if when else len(self.commits)
        return self.commits[i] if i < len(self.commits) else None


def items_ndjson_weekly(repo: Repo, src: dict, f: dict):
    blob = recorded_blob(repo, f)
    sightings = Sightings(f)
    for o in read_ndjson(blob):
        collected = o.get("collectedAt")
        collected_at = parse_iso(collected) if collected else None
        seen_sha, seen = sightings.first_at_or_after(collected_at) or (f["commit"], None)
        if seen is None:
            seen = collected_at or repo.commit_time(f["commit"])
        pub, prec = parse_date(o.get("pubDate"))
        yield {
            "outlet": o.get("source") or "?",
            "declared": "en",
            "title": o.get("title") or "",
            "summary": o.get("description") or "",
            "link": o.get("link") or "",
            "pub": pub,
            "prec": prec,
            "first_seen": seen,
            "source": f"{repo.name}@{seen_sha}:{f['path']}",
        }


def plan_rss_snapshots(repo: Repo, src: dict, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Feeds rewritten on every run: sample one commit per `sample_hours` in the window."""
    step = dt.timedelta(hours=src.get("sample_hours", 12))
    lead = dt.timedelta(days=src.get("lead_days", 7))
    files = []
    paths = src.get("paths")
    if not paths:
        out = repo.git("ls-tree", "--name-only", "HEAD", src["dir"] + "/")
        paths = [p for p in out.split() if p.endswith(".xml")]
    by_file = src.get("sample_hours_by_file", {})
    for path in sorted(paths):
        step = dt.timedelta(hours=by_file.get(path, src.get("sample_hours", 12)))
        until = min(end + dt.timedelta(days=1), RESERVED_FROM)  # never a reserved day's commit
        hist = repo.log(path, since=iso(start - lead), until=iso(until))
        hist.reverse()  # oldest first
        chosen, last = [], None
        for sha, t in hist:
            if last is None or t - last >= step or step.total_seconds() == 0:
                chosen.append([sha, iso(t)])
                last = t
        if hist and chosen[-1][0] != hist[-1][0]:
            chosen.append([hist[-1][0], iso(hist[-1][1])])
        if chosen:
            files.append({"path": path, "commits": chosen})
    return files


def items_rss_snapshots(repo: Repo, src: dict, f: dict):
    outlet_map = src.get("outlets", {})
    for sha, when in f["commits"]:
        blob = repo.show(sha, f["path"])
        if blob is None:
            continue
        channel, items = read_rss(blob)
        seen = parse_iso(when)
        base = os.path.basename(f["path"])
        outlet = outlet_map.get(base) or channel.get("title", "").split(" — ")[0].strip() or base
        declared = (channel.get("language") or src.get("lang", "")).split("-")[0]
        for it in items:
            pub, prec = parse_date(it["pubDate"])
            yield {
                "outlet": outlet,
                "declared": declared or src.get("lang", ""),
                "title": it["title"],
                "summary": it["description"],
                "link": it["link"],
                "pub": pub,
                "prec": prec,
                "first_seen": seen,
                "source": f"{repo.name}@{sha}:{f['path']}",
            }


def plan_telegram_mirror(repo: Repo, src: dict, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """A Telegram channel's accumulated archive (one JSON file, never pruned): read it at the
    last commit before the source's window ends; first_seen is the first commit at or after
    each post's time."""
    files = []
    for path in src["paths"]:
        hist = [(s, t) for s, t in repo.log(path) if t < end]
        if not hist:
            continue
        files.append(
            {
                "path": path,
                "commit": hist[0][0],
                "first_seen_commits": [[s, iso(t)] for s, t in reversed(hist)],
            }
        )
    return files


PROMO = re.compile(r"\s*📌[^📌]*$")  # the channel's "subscribe" footer


def telegram_title(text: str) -> str:
    """The post's opening sentence (the channel puts its headline first), at most ~160 chars."""
    text = re.sub(r"^[^\w«\"(]+", "", text)
    m = re.search(r"[.!?…](?=\s)", text[:200])
    if m and m.end() >= 20:
        return text[: m.end()]
    if len(text) <= 160:
        return text
    return text[:160].rsplit(" ", 1)[0] + "…"


def items_telegram_mirror(repo: Repo, src: dict, f: dict):
    blob = recorded_blob(repo, f)
    sightings = Sightings(f)
    posts = json.loads(blob.decode("utf-8"))["posts"]
    for key in sorted(posts, key=int):
        p = posts[key]
        text = PROMO.sub("", WS.sub(" ", p.get("text") or "")).strip()
        if len(text) < src.get("min_chars", 30) or re.match(r"Channel (created|photo|name)", text):
            continue  # Telegram's service messages ("Channel name was changed to ...")
        pub, prec = parse_date(p.get("date_iso"))
        seen_sha, seen = sightings.first_at_or_after(pub) or (
            f["commit"],
            repo.commit_time(f["commit"]),
        )
        yield {
            "outlet": src["outlet"],
            "declared": src.get("lang", ""),
            "title": telegram_title(text),
            "summary": text,
            "link": f"https://t.me/{src['channel']}/{key}",
            "pub": pub,
            "prec": prec,
            "first_seen": seen,
            "source": f"{repo.name}@{seen_sha}:{f['path']}",
        }


PLANNERS = {
    "ndjson_weekly": plan_ndjson_weekly,
    "rss_snapshots": plan_rss_snapshots,
    "telegram_mirror": plan_telegram_mirror,
}
READERS = {
    "ndjson_weekly": items_ndjson_weekly,
    "rss_snapshots": items_rss_snapshots,
    "telegram_mirror": items_telegram_mirror,
}


# ---------------------------------------------------------------- build
def published_at(r: dict) -> tuple[dt.datetime, str]:
    """Published time in UTC: the feed's when it has a time of day, else the sighting."""
    pub, prec, seen = r["pub"], r["prec"], r["first_seen"]
    if pub is None:
        return seen, "first_seen"
    if prec == "day":
        # A bare date: the first sighting is closer when it falls on that day or the next.
        if dt.timedelta(0) <= seen - pub.replace(hour=0, minute=0, second=0) < dt.timedelta(days=2):
            return seen, "first_seen"
        return pub, "day"
    return pub, "feed"


def reserved(d: dt.datetime) -> bool:
    return RESERVED_FROM <= d < RESERVED_UNTIL


def build(prov: dict, mirrors: str) -> tuple[list[dict], collections.Counter, dict]:
    best: dict[str, dict] = {}
    per_file: collections.Counter = collections.Counter()
    dropped = collections.Counter()
    for si, src in enumerate(prov["sources"]):
        if src["repo"] in FORBIDDEN_REPOS:
            raise SystemExit(f"{src['repo']} is reserved for independent evaluation")
        start, end = window_of(src if "window" in src else prov)
        repo = Repo(mirrors, src["repo"])
        reader = READERS[src["kind"]]
        for f in src["files"]:
            for r in reader(repo, src, f):
                r["title"] = clean_text(r["title"])
                r["summary"] = clean_text(r["summary"])
                if not r["title"]:
                    dropped["no title"] += 1
                    continue
                if r["summary"] == r["title"]:
                    r["summary"] = ""  # feeds that repeat the headline as description
                pub, basis = published_at(r)
                if reserved(pub) or reserved(r["first_seen"]):
                    dropped["reserved 2026-08-10..25"] += 1
                    continue
                if not (start <= pub < end):
                    dropped["outside window"] += 1
                    continue
                link = canonical_link(r["link"])
                if link and not is_site_root(link):
                    key = "link:" + link
                else:
                    key = "title:" + hashlib.sha1(norm_title(r["title"]).encode()).hexdigest()
                text = r["title"] + " " + r["summary"]
                rec = {
                    "id": hashlib.sha1(key.encode()).hexdigest()[:16],
                    "outlet": r["outlet"],
                    "lang": detect_lang(text, r["declared"]),
                    "title": r["title"],
                    "summary": r["summary"],
                    "link": link,
                    "published_at": iso(pub),
                    "published_basis": basis,
                    "first_seen": iso(r["first_seen"]),
                    "source": r["source"],
                    "_file": (si, f["path"]),  # a repo may be read in two windows
                }
                old = best.get(key)
                if old is None:
                    best[key] = rec
                elif rec["first_seen"] < old["first_seen"]:
                    if not rec["summary"] and old["summary"]:
                        rec["summary"] = old["summary"]
                    best[key] = rec
                    dropped["duplicate"] += 1
                else:
                    if not old["summary"] and rec["summary"]:
                        old["summary"] = rec["summary"]
                    dropped["duplicate"] += 1
    items = sorted(best.values(), key=lambda r: (r["published_at"], r["outlet"], r["id"]))
    for r in items:
        per_file[r.pop("_file")] += 1
    return items, per_file, dict(dropped)


def stats(items: list[dict], dropped: dict) -> str:
    by_outlet = collections.Counter((r["outlet"], r["lang"]) for r in items)
    by_lang = collections.Counter(r["lang"] for r in items)
    by_day = collections.defaultdict(collections.Counter)
    for r in items:
        by_day[r["published_at"][:10]][r["lang"]] += 1
    langs = sorted(by_lang)
    out = [
        f"items: {len(items)}",
        f"outlets: {len({r['outlet'] for r in items})}",
        f"date range (published_at, UTC): {items[0]['published_at']} .. {items[-1]['published_at']}"
        if items
        else "",
        f"days: {len(by_day)}",
        f"items with an empty summary: {sum(1 for r in items if not r['summary'])}",
        "published_at taken from: "
        + ", ".join(
            f"{k} {v}"
            for k, v in sorted(collections.Counter(r["published_basis"] for r in items).items())
        ),
        "dropped while building: " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())),
        "",
        "per language:",
    ]
    out += [f"  {lang:4} {by_lang[lang]}" for lang in langs]
    out += ["", "per outlet (outlet, lang, items):"]
    out += [
        f"  {o:45} {lang:3} {n}"
        for (o, lang), n in sorted(by_outlet.items(), key=lambda x: (-x[1], x[0]))
    ]
    out += ["", "per day (published_at UTC): total  " + "  ".join(langs)]
    for d in sorted(by_day):
        c = by_day[d]
        counts = "  ".join(f"{lang}={c[lang]}" for lang in langs)
        out.append(f"  {d}  {sum(c.values()):5}  {counts}")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mirrors", required=True, help="folder holding the archives' git dirs")
    ap.add_argument("--out", required=True, help="output JSONL, e.g. /work/corpus-data/items.jsonl")
    ap.add_argument("--provenance", default=PROVENANCE)
    ap.add_argument(
        "--plan", action="store_true", help="choose commits afresh and rewrite provenance.json"
    )
    ap.add_argument(
        "--plan-source",
        action="append",
        metavar="OWNER/REPO[#PART]",
        help="with --plan: choose commits afresh for this source only (repeatable);"
        " #PART names one entry of a repo read in several windows",
    )
    ap.add_argument("--stats", help="also write the figures here (default: stats.txt beside --out)")
    a = ap.parse_args()

    with open(a.provenance, encoding="utf-8") as fh:
        prov = json.load(fh)
    if a.plan:
        for src in prov["sources"]:
            part = f"{src['repo']}#{src['part']}" if "part" in src else None
            if a.plan_source and src["repo"] not in a.plan_source and part not in a.plan_source:
                continue
            start, end = window_of(src if "window" in src else prov)
            repo = Repo(a.mirrors, src["repo"])
            src["files"] = PLANNERS[src["kind"]](repo, src, start, end)
            print(f"planned {part or src['repo']}: {len(src['files'])} files", file=sys.stderr)

    items, per_file, dropped = build(prov, a.mirrors)

    if a.plan:
        for si, src in enumerate(prov["sources"]):
            for f in src["files"]:
                f["items_taken"] = per_file.get((si, f["path"]), 0)
            src["items_taken"] = sum(f["items_taken"] for f in src["files"])
        prov["figures"] = {
            "items": len(items),
            "by_lang": dict(collections.Counter(r["lang"] for r in items).most_common()),
        }
        text = json.dumps(prov, ensure_ascii=False, indent=1)
        # one line per commit list keeps the manifest short and diffable
        text = re.sub(r'\[\s*"([0-9a-f]{40})",\s*"([^"]+)"\s*\]', r'["\1", "\2"]', text)
        with open(a.provenance, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        for si, src in enumerate(prov["sources"]):
            for f in src["files"]:
                want, got = f.get("items_taken"), per_file.get((si, f["path"]), 0)
                if want is not None and want != got:
                    print(
                        f"warning: {src['repo']}:{f['path']} gave {got} items, "
                        f"provenance says {want}",
                        file=sys.stderr,
                    )

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as fh:
        for r in items:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    text = stats(items, dropped)
    with open(
        a.stats or os.path.join(os.path.dirname(os.path.abspath(a.out)), "stats.txt"),
        "w",
        encoding="utf-8",
    ) as fh:
        fh.write(text)
    print(text.split("\nper outlet")[0])


if __name__ == "__main__":
    main()
