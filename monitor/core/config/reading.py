"""Reading a config file into problems, not exceptions.

Every problem is collected (not just the first) and names the file, the key and the fix, so
`newsmon check` can report a whole broken config in one go.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import stat
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A value's check: what is wrong with it, or None.
Check = Callable[[Any], str | None]
NUMBER = (int, float)
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def shown(value: Any) -> str:
    """A value as a problem quotes it: its repr, cut short when long or deeply nested."""
    return reprlib.repr(value)


def printable(text: str) -> str:
    """`text` with control characters (and lone surrogates) escaped, safe for a terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def key_name(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted (so "" or "a.b" show)."""
    return key if BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


# How to write a value of each type, ending a "must be int, not str" problem.
WRITE_KIND = {
    bool: "write true or false",
    int: "write a whole number",
    float: "write a number",
    str: "write it in quotes",
    list: 'write a list, e.g. ["a", "b"]',
    dict: "write a table",
}


def value_problem(value: Any, kind: type | tuple[type, ...], check: Check | None) -> str | None:
    """What is wrong with a value that should be of `kind` and pass `check`; None if nothing.
    A bool is never taken for a number, nor inf or nan for any number."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        fix = WRITE_KIND.get(kinds[-1])
        problem = f"must be {names}, not {type(value).__name__} {shown(value)}"
        return f"{problem}; {fix}" if fix else problem
    if isinstance(value, float) and not math.isfinite(value):
        bounds = check(value) if check else None
        return f"is {value}; {bounds or 'must be a finite number'}"
    return check(value) if check else None


UNREAD = object()  # what a Reader parsed from a file it could not read


class Unreadable(ValueError):
    """Well-formed TOML or JSON that Python cannot hold: the message says what and the fix."""


def loads(text: str, form: str) -> Any:
    """`text` parsed as TOML or JSON, for a file and an environment variable alike. A value
    nested deeper than Python's recursion limit, or an integer longer than its digit limit,
    raises Unreadable; bad syntax raises the parser's own ValueError."""
    parse = json.loads if form == "JSON" else tomllib.loads
    try:
        return parse(text)
    except RecursionError:
        raise Unreadable("arrays or tables nest too deeply to read; flatten them") from None
    except ValueError as exc:
        # int() refuses more digits than sys.get_int_max_str_digits(), under both parsers.
        if "integer string conversion" not in str(exc):
            raise
        limit = sys.get_int_max_str_digits()
        raise Unreadable(
            f"holds a number of more than {limit} digits; write a smaller number"
        ) from None


def _not_a_file(mode: int) -> str | None:
    """Why a path of this mode cannot be read as a config file (a folder would raise, a pipe
    or a device would never end); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file; replace it with the file"
    return "is not a regular file (a pipe, socket or device); replace it with the file"


class Reader:
    """Typed access to one TOML (or, by its suffix, JSON) file that records problems instead
    of raising. A `hint` ends every problem of the file: how to fix any of them."""

    def __init__(self, path: Path, problems: list[Problem], required: bool = True, hint: str = ""):
        self.path, self.problems, self.hint = path, problems, hint
        self.data: dict[str, Any] = {}
        self.found = True  # False when the file does not exist
        form = "JSON" if path.suffix == ".json" else "TOML"
        data = self._parse(form, required)
        if isinstance(data, dict):
            self.data = data
        elif data is not UNREAD:
            self.problem("-", f"must be a {form} object")

    @classmethod
    def of(cls, data: dict[str, Any], source: str, problems: list[Problem]) -> Reader:
        """A reader of `data` already parsed (a JSON body), its problems named after `source`."""
        reader = cls.__new__(cls)
        reader.path, reader.problems, reader.hint = Path(source), problems, ""
        reader.data, reader.found = data, True
        return reader

    def _parse(self, form: str, required: bool) -> Any:
        """The file's content; UNREAD, with any problem recorded, when it cannot be read."""
        try:
            if message := _not_a_file(self.path.stat().st_mode):
                self.problem("-", message)
                return UNREAD
            return loads(self.path.read_text(encoding="utf-8"), form)
        except FileNotFoundError:
            self.found = False
            if required:
                self.problem(
                    "-", "file is missing; create it (`newsmon init DIR` writes the shipped ones)"
                )
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.problem("-", f"cannot be read ({reason}); make it a file newsmon can read")
        except UnicodeDecodeError:
            self.problem("-", "not UTF-8 text; save the file as UTF-8")
        except Unreadable as exc:
            self.problem("-", str(exc))
        except ValueError as exc:  # tomllib's and json's decode errors both are
            self.problem("-", f"not valid {form} ({exc}); fix the syntax")
        return UNREAD

    def problem(self, key: str, message: str) -> None:
        message = f"{message}; {self.hint}" if self.hint else message
        self.problems.append(Problem(printable(str(self.path)), printable(key), printable(message)))

    def get(
        self,
        table: dict[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        check: Check | None = None,
    ) -> Any:
        """table[key] if well typed and passing `check`; else record a problem, return default."""
        if key not in table:
            return default
        if message := value_problem(table[key], kind, check):
            self.problem(f"{where}{key_name(key)}", message)
            return default
        return table[key]

    def require(
        self,
        table: dict[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        check: Check | None = None,
    ) -> Any:
        if key not in table:
            self.problem(f"{where}{key_name(key)}", "is required; add it")
            return None
        return self.get(table, key, where, kind, check=check)

    def array_of_tables(self, key: str) -> list[dict[str, Any]]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(key, f"must be an array of tables, written [[{key}]]")
            return []
        return value

    def unknown_keys(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in sorted(set(table) - allowed):
            self.problem(
                f"{where}{key_name(key)}",
                f"unknown key; expected one of: {', '.join(sorted(allowed))}",
            )
