"""Front-panel widgets (Screen, Message, Pages, Menu, PinEntry, NumberEntry) and text helpers.

For a 20x4 screen and a 0-9/*/# keypad. A widget knows nothing of the pump: it draws
its lines and calls back the flow that made it. `*` is always back/cancel/delete and `#` enter/next.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from pca.controller.auth import PIN_MAX_DIGITS, PIN_MIN_DIGITS, SecretPin
from pca.controller.panel import text as T
from pca.controller.ports import NS_PER_S

WIDTH = 20
ROWS = 4
MESSAGE_NS = 4 * NS_PER_S

Action = Callable[[], None]


# ---- text helpers ------------------------------------------------------------------------
def fit(text: str) -> str:
    return text[:WIDTH]


def num(value: Fraction | float, places: int = 3) -> str:
    """A short decimal: 1, 0.5, 0.05, 0.333."""
    text = f"{float(value):.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def wrap(text: str, width: int = WIDTH) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def paginate(lines: Sequence[str], per_page: int = ROWS - 1) -> list[list[str]]:
    lines = list(lines) or [""]
    return [lines[i:i + per_page] for i in range(0, len(lines), per_page)]


def row(label: str, a: str, b: str) -> str:
    """Side by side: the entered unit and the other one, so a 10x error is visible."""
    return f"{label:<8}{a:>6}{b:>6}"[:WIDTH]


# ---- screens -----------------------------------------------------------------------------
class Screen:
    """One state of the panel: what it shows, what each key does, when it gives up."""

    editing = False  # inside an edit: the session stays open 4 min (SR-6)
    timeout_ns: int | None = None  # own timeout; None: the session's (or 30 s when locked)
    # A guarded screen answers only the digits it shows: any other is a stray key; on a
    # strict one, so is a `#` after a digit some screen swallowed (frontpanel.py, SR-6).
    guarded = False
    strict = False

    def takes(self, key: str) -> bool:
        """Whether this digit means something here (typed data or a choice)."""
        return True

    def overflowed(self) -> bool:
        """More digits were typed here than it holds: its `#` answers nothing."""
        return False

    def render(self, now_ns: int) -> list[str]:
        raise NotImplementedError

    def key(self, key: str) -> None:
        raise NotImplementedError

    def timed_out(self) -> None:
        """Called when the screen's own timeout passes (default: the panel goes home)."""


class Message(Screen):
    """A short message; any key, or a few seconds, moves on."""

    timeout_ns = MESSAGE_NS

    def __init__(self, lines: Sequence[str], then: Action) -> None:
        self.lines = [fit(line) for line in lines]
        self.then = then

    def render(self, now_ns: int) -> list[str]:
        return self.lines

    def takes(self, key: str) -> bool:
        return False  # any key moves on: a digit here is swallowed, not an answer

    def key(self, key: str) -> None:
        self.then()

    def timed_out(self) -> None:
        self.then()


class Pages(Screen):
    """Read-only pages of three lines; `#` next (and on the last page: enter), `*` back."""

    guarded = True

    def __init__(self, pages: Sequence[Sequence[str]], *, back: Action,
                 enter: Action | None = None, enter_label: str = T.KEY_OK,
                 back_label: str = T.KEY_BACK, digits: Mapping[str, Action] | None = None,
                 digit_hint: str = "") -> None:
        self.pages = [list(p) for p in pages] or [[""]]
        self.back = back
        self.enter = enter
        self.enter_label = enter_label
        self.back_label = back_label
        self.digits = dict(digits or {})
        self.digit_hint = digit_hint
        self.page = 0

    def takes(self, key: str) -> bool:
        return key in self.digits

    def render(self, now_ns: int) -> list[str]:
        lines = [fit(line) for line in self.pages[self.page]][:ROWS - 1]
        lines += [""] * (ROWS - 1 - len(lines))
        last = self.page == len(self.pages) - 1
        if last and self.enter is None:
            foot = T.PAGES_LAST.format(back=self.back_label)
        elif last:
            foot = T.PAGES_ENTER.format(enter=self.enter_label, back=self.back_label)
        else:
            foot = T.PAGES_NEXT.format(back=self.back_label)
        if self.digit_hint:
            foot = f"{self.digit_hint} {foot}"
        return [*lines, fit(foot)]

    def key(self, key: str) -> None:
        if key == "*":
            self.back()
        elif key == "#":
            if self.page < len(self.pages) - 1:
                self.page += 1
            elif self.enter is not None:
                self.enter()
            else:
                self.page = 0
        elif key in self.digits:
            self.digits[key]()


class Confirm(Screen):
    """A change of therapy, named with its values on three lines: `#` does it, `*` goes back.
    No digit answers it (a digit here is a slip or a PIN typed again: a stray key)."""

    guarded = True
    strict = True

    def __init__(self, lines: Sequence[str], *, yes: Action, back: Action,
                 yes_label: str) -> None:
        self.lines = [fit(line) for line in lines][:ROWS - 1]
        self.lines += [""] * (ROWS - 1 - len(self.lines))
        self.yes = yes
        self.back = back
        self.yes_label = yes_label

    def render(self, now_ns: int) -> list[str]:
        return [*self.lines, fit(T.PAGES_ENTER.format(enter=self.yes_label, back=T.KEY_BACK))]

    def takes(self, key: str) -> bool:
        return False

    def key(self, key: str) -> None:
        if key == "#":
            self.yes()
        elif key == "*":
            self.back()


class Ignored(Screen):
    """Stray keys in an open session: says so, swallows the digits that follow (the rest of
    a PIN typed again), and `#` or `*` ends it; nothing is done."""

    timeout_ns = MESSAGE_NS

    def __init__(self, done: Action, back: Action) -> None:
        self.done = done
        self.back = back

    def render(self, now_ns: int) -> list[str]:
        return list(T.STRAY_TYPING)

    def key(self, key: str) -> None:
        if key == "#":
            self.done()
        elif key == "*":
            self.back()


@dataclass(frozen=True)
class MenuItem:
    digit: str
    label: str
    action: Action


class Menu(Screen):
    """Numbered items, two per line; a digit chooses, `#` pages, `*` leaves. The items are
    asked for at every drawing and key, so a label (Start/Stop) is never stale."""

    PER_PAGE = 6
    guarded = True
    strict = True

    def __init__(self, title: str, items: Callable[[], Sequence[MenuItem]],
                 back: Action) -> None:
        self.title = title
        self.items = items
        self.back = back
        self.page = 0

    def pages(self) -> int:
        return max(1, -(-len(self.items()) // self.PER_PAGE))

    def render(self, now_ns: int) -> list[str]:
        many = self.pages() > 1
        self.page %= self.pages()
        head = T.MENU_PAGE.format(title=self.title, page=self.page + 1, pages=self.pages()) \
            if many else self.title
        tail = T.MENU_TAIL_PAGED if many else T.MENU_TAIL
        lines = [fit(f"{head:<{WIDTH - len(tail)}}{tail}")]
        shown = self.items()[self.page * self.PER_PAGE:(self.page + 1) * self.PER_PAGE]
        for i in range(0, len(shown), 2):
            cells = [f"{it.digit} {it.label}"[:10] for it in shown[i:i + 2]]
            lines.append(fit("".join(f"{c:<10}" for c in cells).rstrip()))
        return lines

    def takes(self, key: str) -> bool:
        return any(item.digit == key for item in self.items())

    def key(self, key: str) -> None:
        if key == "*":
            self.back()
        elif key == "#":
            self.page = (self.page + 1) % self.pages()
        else:
            for item in self.items():
                if item.digit == key:
                    item.action()
                    return


class _Digits:
    """Typed digits of a PIN; never shows them (repr, str in an f-string of a crash)."""

    __slots__ = ("_chars",)

    def __init__(self) -> None:
        self._chars: list[str] = []

    def __repr__(self) -> str:
        return "<PIN entry " + "*" * len(self._chars) + ">"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._chars)

    def add(self, digit: str) -> None:
        self._chars.append(digit)

    def clear(self) -> None:
        self._chars.clear()

    def take(self) -> SecretPin:
        pin = SecretPin("".join(self._chars))
        self._chars.clear()
        return pin


class PinEntry(Screen):
    """A masked PIN entry: one `*` per digit; `#` enters, `*` clears (then goes back)."""

    def __init__(self, title: str, on_enter: Callable[[SecretPin], None], back: Action, *,
                 note: Callable[[], str] | None = None, editing: bool = True) -> None:
        self.title = title
        self.on_enter = on_enter
        self.back = back
        self.note = note
        self.editing = editing
        self.digits = _Digits()
        self.message = ""

    def render(self, now_ns: int) -> list[str]:
        note = self.message or (self.note() if self.note else "")
        return [fit(self.title), fit(T.PIN_MASK.format(stars="*" * len(self.digits))),
                fit(note), T.PIN_FOOT if len(self.digits) else T.PIN_FOOT_EMPTY]

    def takes(self, key: str) -> bool:
        return len(self.digits) < PIN_MAX_DIGITS

    def key(self, key: str) -> None:
        if key == "*":
            if len(self.digits):
                self.digits.clear()
                self.message = ""
            else:
                self.back()
        elif key == "#":
            if not PIN_MIN_DIGITS <= len(self.digits) <= PIN_MAX_DIGITS:
                self.digits.clear()
                self.message = T.PIN_LENGTH.format(low=PIN_MIN_DIGITS, high=PIN_MAX_DIGITS)
                return
            self.message = ""
            self.on_enter(self.digits.take())
        elif key.isdigit() and len(self.digits) < PIN_MAX_DIGITS:
            self.digits.add(key)
            self.message = ""


class NumberEntry(Screen):
    """A decimal typed without a decimal key: digits shift in from the right
    (1, 5, 0 with 2 places is 1.50); `*` deletes a digit, then goes back; `#` enters.
    Always starts empty: nothing is carried over from a previous entry or patient."""

    editing = True

    def __init__(self, title: str, unit: str, *, places: int, on_enter: Callable[[Fraction],
                 None], back: Action, hint: str = "", max_digits: int = 5) -> None:
        self.title = title
        self.unit = unit
        self.places = places
        self.on_enter = on_enter
        self.back = back
        self.hint = hint
        self.max_digits = max_digits
        self.typed = ""
        self.message = ""
        self._overflow = False

    @property
    def value(self) -> Fraction:
        return Fraction(int(self.typed or "0"), 10 ** self.places)

    def takes(self, key: str) -> bool:
        return len(self.typed) < self.max_digits

    def overflowed(self) -> bool:
        return self._overflow

    def render(self, now_ns: int) -> list[str]:
        shown = f"{float(self.value):.{self.places}f}" if self.typed else T.NUMBER_EMPTY
        return [fit(self.title), fit(T.NUMBER_SHOWN.format(value=shown, unit=self.unit)),
                fit(self.message or self.hint), T.NUMBER_FOOT]

    def key(self, key: str) -> None:
        if key == "*":
            if self.typed:
                self.typed = self.typed[:-1]
                self.message = ""
            else:
                self.back()
        elif key == "#":
            if not self.typed:
                self.message = T.NUMBER_MISSING
                return
            self.on_enter(self.value)
        elif key.isdigit() and len(self.typed) < self.max_digits:
            if self.typed or key != "0":
                self.typed += key
            self.message = ""
        elif key.isdigit():
            self._overflow = True  # a PIN typed into the amount, most likely

    def refuse(self, message: str) -> None:
        self.typed = ""
        self.message = message
        self._overflow = False
