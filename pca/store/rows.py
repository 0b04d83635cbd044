"""How a log row is hashed, dated and read back (shared by the writer and the verifier)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from pca.controller.ports import Event

GENESIS = "0" * 64
NS_PER_S = 1_000_000_000


class DamagedRow(ValueError):
    """A row whose stored text cannot be read back as an event."""


def wall_iso(wall_ns: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-03-01T08:00:00.000Z."""
    ms = wall_ns // 1_000_000
    seconds, milli = divmod(ms, 1000)
    if 0 <= seconds < 253402300800:  # years 1970..9999: the fast path
        return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds)) + f"{milli:03d}Z"
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(record)).encode()).hexdigest()


def row_record(seq: int, event: Event) -> dict[str, Any]:
    """The part of a row the hash covers (`wall` is derived from `wall_ns`)."""
    return {"seq": seq, "t_s": event.t_s, "pump_ns": event.pump_ns, "wall_ns": event.wall_ns,
            "type": event.type, "actor": event.actor, "fields": dict(event.fields)}


def _no_constant(name: str) -> Any:
    raise DamagedRow(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def load_data(text: object) -> dict[str, Any]:
    """The `data` column as a JSON object; DamagedRow for anything else (never another
    exception: NaN, truncation and 100,000-deep nesting are all just damage)."""
    if not isinstance(text, str):
        raise DamagedRow(f"data is {type(text).__name__}, not text")
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise DamagedRow("data is nested too deeply to be an event") from None
    except DamagedRow:
        raise
    except ValueError as err:
        raise DamagedRow(f"data is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise DamagedRow("data is not a JSON object")
    return value


def row_event(row: tuple[Any, ...]) -> Event:
    """(t_s, pump_ns, wall_ns, type, actor, data) as an Event, or DamagedRow."""
    t_s, pump_ns, wall_ns, type_, actor, data = row
    if not (isinstance(t_s, float) and isinstance(pump_ns, int) and isinstance(wall_ns, int)
            and isinstance(type_, str) and isinstance(actor, str)):
        raise DamagedRow("a column holds a value of the wrong type")
    if t_s != t_s or t_s in (float("inf"), float("-inf")):
        raise DamagedRow(f"t_s is {t_s}")
    return Event(type_, actor, t_s, pump_ns, wall_ns, load_data(data))  # type: ignore[arg-type]
