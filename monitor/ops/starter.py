"""`newsmon init DIR`: a starter config folder, for installs without the repository (pipx).

The files are the repository's `config/` folder itself, shipped as package data through the
link `monitor/ops/shipped_config` (so there is one copy to keep true). Subscriptions go out
commented: a starter config must not post anywhere until its owner says where.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from monitor.ops import CommandError

SUBSCRIPTIONS = "subscriptions.toml"


def shipped_files() -> dict[str, bytes]:
    """The shipped config files by name, subscriptions commented out."""
    folder = resources.files("monitor.ops") / "shipped_config"
    files = {
        item.name: item.read_bytes()
        for item in folder.iterdir()
        if item.name.endswith((".toml", ".json"))
    }
    files[SUBSCRIPTIONS] = commented(files[SUBSCRIPTIONS].decode()).encode()
    return dict(sorted(files.items()))


def commented(toml: str) -> str:
    """Every line that is not blank or a comment already, as a comment."""
    return "".join(
        line if not line.strip() or line.lstrip().startswith("#") else f"# {line}"
        for line in toml.splitlines(keepends=True)
    )


def write_starter(directory: Path) -> list[Path]:
    """Write the shipped files into `directory` (made if missing); refuse, writing nothing,
    when any of them is there already."""
    files = shipped_files()
    taken = [name for name in files if (directory / name).exists()]
    if taken:
        raise CommandError(
            f"{directory} already holds {', '.join(taken)}; init overwrites nothing: "
            "move those files away, or give another folder"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, content in files.items():
            with (directory / name).open("xb") as out:  # "x": never over a file made meanwhile
                out.write(content)
            written.append(directory / name)
    except OSError as exc:
        raise CommandError(f"cannot write into {directory}: {exc.strerror or exc}") from None
    return written
