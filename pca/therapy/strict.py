"""Strict reading of the pump's input files: size, UTF-8, nesting, exact types and bounds.

Every file kind (scenario, pharmacy prescription, drug library, `pca.toml`) is read
through `parse_toml` and then field by field through a `Table`: a field has one
type (a quoted "1.5" is text, never a number; true is never 1), a number is finite
and inside its physical bounds, a required field has no default, and a key no
schema names is refused. Each problem is one line naming the file, the field, the
value and what is allowed; nothing is accepted half-way.

This is a small loader of our own rather than a validation library: it keeps
pca/therapy free of dependencies (and of pydantic's v1/v2 churn), gives exact
decimal Fractions instead of floats, and words every message for a clinician.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any, NoReturn

# Deepest nesting any schema needs is 4 (scenario > [[drug]] > limits > [4 numbers]).
MAX_DEPTH = 8
MAX_TEXT_CHARS = 200
SHOWN_CHARS = 40


class InputError(ValueError):
    """A file or value that is refused; the message is one line naming where and why."""


def _depth_problem(data: object, limit: int) -> str | None:
    # Iterative: a hostile file must not be able to make this walk recurse.
    stack: list[tuple[object, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, path = stack.pop()
        if depth > limit:
            return f"{path or 'the top level'} is nested deeper than {limit} levels"
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{path}.{key(k)}" if path else key(k))
                         for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(value))
    return None


def decode(data: bytes, source: str, *, max_bytes: int,
           error: type[ValueError] = InputError) -> str:
    """The file's text: at most `max_bytes` bytes of UTF-8 (anything else is refused)."""
    if len(data) > max_bytes:
        raise error(f"{source}: the file is {len(data)} bytes; at most {max_bytes} are "
                    "allowed for this kind of file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{source}: not UTF-8 text (byte {err.start} is "
                    f"{data[err.start]:#04x}): save the file as UTF-8") from None


def parse_toml(data: bytes | str, source: str, *, max_bytes: int,
               error: type[ValueError] = InputError,
               max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A TOML document, refused as a whole if too big, not UTF-8, invalid or too deep."""
    if isinstance(data, str):
        size = len(data.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise error(f"{source}: the file is {size} bytes; at most {max_bytes} are "
                        "allowed for this kind of file")
        text = data
    else:
        text = decode(data, source, max_bytes=max_bytes, error=error)
    try:
        parsed = tomllib.loads(text)
    except RecursionError:
        raise error(f"{source}: nested deeper than {max_depth} levels") from None
    except ValueError as err:  # TOMLDecodeError, and integers longer than Python allows
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise error(f"{source}: not valid TOML: {first}") from None
    problem = _depth_problem(parsed, max_depth)
    if problem is not None:
        raise error(f"{source}: {problem}")
    return parsed


def key(name: object) -> str:
    """A key as a message shows it: bare when plain, quoted (and cut short) otherwise."""
    text = str(name)
    if text and len(text) <= SHOWN_CHARS and all(c.isalnum() or c in "_-" for c in text):
        return text
    return shown(text)


def shown(value: object) -> str:
    """A value as the file wrote it, cut short for a one-line message."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__


def _not_a_number(value: object) -> str:
    if isinstance(value, float):
        return "it is not a finite number"
    if isinstance(value, str):
        return "got text: numbers are written without quotes"
    return f"got {_kind(value)}"


def dec(value: Fraction | int) -> str:
    """A bound for a message: exact where short, else 6 significant decimals."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6g}"
    return text


def _range(lo: Fraction | int, hi: Fraction | int, unit: str, lo_open: bool) -> str:
    tail = f" {unit}" if unit else ""
    if lo_open:
        return f"above {dec(lo)} and at most {dec(hi)}{tail}"
    return f"{dec(lo)} to {dec(hi)}{tail}"


def as_number(value: object) -> Fraction | None:
    """The exact decimal of an int or a finite float (0.2 is 1/5); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return Fraction(repr(value))
    if isinstance(value, Fraction):
        return value
    return None


class Table:
    """One table of a file, read field by field; `finish` refuses the keys nobody read."""

    def __init__(self, raw: object, where: str, error: type[ValueError] = InputError,
                 *, absent_if_none: bool = False) -> None:
        if not isinstance(raw, Mapping):
            raise error(f"{where}: must be a table, got {shown(raw)} ({_kind(raw)})")
        self.raw: Mapping[str, Any] = raw
        self.where = where
        self.error = error
        self.read: set[str] = set()
        # Values that came from JSON (the event log) may carry null for "absent".
        self.absent_if_none = absent_if_none
        self.prefix = ""  # e.g. "motor.": messages say `motor.budget_ml = ...`

    def fail(self, name: str, value: object, allowed: str, because: str = "") -> NoReturn:
        tail = f" ({because})" if because else ""
        raise self.error(f"{self.where}: {self.prefix}{name} = {shown(value)} must be "
                         f"{allowed}{tail}")

    def missing(self, name: str, allowed: str) -> NoReturn:
        raise self.error(f"{self.where}: {self.prefix}{name} is required ({allowed}); it is "
                         "missing and never has a default")

    def has(self, name: str) -> bool:
        present = name in self.raw and not (self.absent_if_none and self.raw[name] is None)
        if not present and name in self.raw:
            self.read.add(name)
        return present

    def _get(self, name: str) -> Any:
        self.read.add(name)
        return self.raw[name]

    def number(self, name: str, lo: Fraction | int, hi: Fraction | int, *, unit: str = "",
               lo_open: bool = False, default: Fraction | None = None,
               required: bool = True) -> Fraction:
        """An exact decimal in [lo, hi] (or (lo, hi] with lo_open)."""
        allowed = f"a number {_range(lo, hi, unit, lo_open)}"
        if not self.has(name):
            if default is not None:
                return default
            if required:
                self.missing(name, allowed)
            raise ValueError("number(): an optional field needs a default; use maybe_number")
        return self._check_number(name, self._get(name), lo, hi, unit, lo_open)

    def maybe_number(self, name: str, lo: Fraction | int, hi: Fraction | int, *,
                     unit: str = "", lo_open: bool = False) -> Fraction | None:
        """An optional number: None when the field is absent (its absence has a meaning)."""
        if not self.has(name):
            return None
        return self._check_number(name, self._get(name), lo, hi, unit, lo_open)

    def _check_number(self, name: str, value: object, lo: Fraction | int, hi: Fraction | int,
                      unit: str, lo_open: bool) -> Fraction:
        allowed = f"a number {_range(lo, hi, unit, lo_open)}"
        number = as_number(value)
        if number is None:
            self.fail(name, value, allowed, _not_a_number(value))
        if number < lo or number > hi or (lo_open and number == lo):
            self.fail(name, value, allowed)
        return number

    def integer(self, name: str, lo: int, hi: int, *, unit: str = "",
                default: int | None = None, required: bool = True) -> int:
        """A whole number in [lo, hi] (5 or 5.0; never 5.5, "5", true, nan)."""
        if not self.has(name):
            if default is not None:
                return default
            if required:
                self.missing(name, f"a whole number {_range(lo, hi, unit, False)}")
            raise ValueError("integer(): an optional field needs a default; use maybe_integer")
        return self._check_integer(name, self._get(name), lo, hi, unit)

    def maybe_integer(self, name: str, lo: int, hi: int, *, unit: str = "") -> int | None:
        if not self.has(name):
            return None
        return self._check_integer(name, self._get(name), lo, hi, unit)

    def _check_integer(self, name: str, value: object, lo: int, hi: int, unit: str) -> int:
        allowed = f"a whole number {_range(lo, hi, unit, False)}"
        number = as_number(value)
        if number is None:
            self.fail(name, value, allowed, _not_a_number(value))
        if number.denominator != 1 or not lo <= number <= hi:
            self.fail(name, value, allowed)
        return int(number)

    def flag(self, name: str, *, default: bool | None = None) -> bool:
        if not self.has(name):
            if default is None:
                self.missing(name, "true or false")
            return default
        value = self._get(name)
        if not isinstance(value, bool):
            self.fail(name, value, "true or false", f"got {_kind(value)}")
        return value

    def text(self, name: str, *, choices: Sequence[str] | None = None,
             default: str | None = None, max_chars: int = MAX_TEXT_CHARS,
             allow_empty: bool = False) -> str:
        if choices is not None:
            allowed = "one of " + ", ".join(choices)
        else:
            allowed = f"text of {'0' if allow_empty else '1'} to {max_chars} characters"
        if not self.has(name):
            if default is None:
                self.missing(name, allowed)
            return default
        value = self._get(name)
        if not isinstance(value, str):
            self.fail(name, value, allowed, f"got {_kind(value)}; text is written in quotes")
        if choices is not None:
            if value not in choices:
                self.fail(name, value, allowed)
            return value
        if len(value) > max_chars or (not allow_empty and not value.strip()):
            self.fail(name, value, allowed)
        if any(ord(c) < 32 and c != "\t" for c in value):
            self.fail(name, value, allowed, "control characters are not allowed")
        return value

    def table(self, name: str, *, required: bool = True) -> Table | None:
        if not self.has(name):
            if required:
                raise self.error(f"{self.where}: the [{name}] table is missing: it is "
                                 "required")
            return None
        return Table(self._get(name), self.sub(name), self.error,
                     absent_if_none=self.absent_if_none)

    def array(self, name: str, *, max_items: int, min_items: int = 0,
              required: bool = True) -> list[Any]:
        if not self.has(name):
            if required:
                self.missing(name, f"an array of {min_items} to {max_items} items")
            return []
        value = self._get(name)
        allowed = f"an array [...] of {min_items} to {max_items} items"
        if not isinstance(value, list):
            self.fail(name, value, allowed, f"got {_kind(value)}")
        if not min_items <= len(value) <= max_items:
            self.fail(name, value, allowed)
        return value

    def numbers(self, name: str, lo: Fraction | int, hi: Fraction | int, *, unit: str = "",
                lo_open: bool = False, min_items: int = 1, max_items: int) -> list[Fraction]:
        items = self.array(name, min_items=min_items, max_items=max_items)
        return [self._check_number(f"{name}[{i}]", v, lo, hi, unit, lo_open)
                for i, v in enumerate(items)]

    def sub(self, name: str) -> str:
        """The location of a sub-table for messages."""
        return f"{self.where}.{name}" if not self.where.endswith(":") else \
            f"{self.where} {name}"

    def unread(self) -> list[str]:
        return sorted(set(self.raw) - self.read)

    def finish(self, known: Sequence[str] = ()) -> None:
        """Refuse any key that no reader asked for (a typo must not pass as absent)."""
        unknown = self.unread()
        if unknown:
            names = sorted({*self.read, *known})
            where = f"{self.where}: [{self.prefix[:-1]}]" if self.prefix else f"{self.where}:"
            raise self.error(f"{where} unknown field(s) {', '.join(map(key, unknown))} "
                             f"(allowed: {', '.join(names)})")

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)
