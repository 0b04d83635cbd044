"""Start-up checkpoints: what recovery knows at a seal, so start-up replays only the tail.

A checkpoint is the recovery fold (pca.controller.recovery) at a sealed event, without
the dose lists (those only matter inside the longest window), plus the seqs of the older
events the journal's observers must see again (the last new patient, prescription,
installed drug library, PIN change per role, start of delivery, PCA start and restart, and
every PIB given or skipped since the new patient). It is a pure function of the events up
to the seal, so `pca log verify` recomputes and compares every one, and the seal's MAC
covers it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Any

from pca.controller.auth import FailureState
from pca.controller.ports import NS_PER_S, StoredEvent
from pca.controller.recovery import Recovered, fold

# Start-up replays at least this much pump time before the last event: the panel's
# history (72 h + 1) and the ledger's longest window (12 h) fit inside it.
REPLAY_WINDOW_NS = 74 * 3600 * NS_PER_S
_DROPPED = ("deliveries", "dose_starts", "problems")


def _fold_version() -> str:
    """Changes whenever the code that folds events changes: a checkpoint made by another
    version is never resumed from (start-up replays from an older point or the start) and
    never compared by verify, so changing recovery never misreads an old log."""
    from pca.controller import recovery

    try:
        text = Path(recovery.__file__).read_bytes() + Path(__file__).read_bytes()
    except OSError:
        return "unknown"
    return hashlib.sha256(text).hexdigest()[:16]


FOLD_VERSION = _fold_version()


def _rec_to_json(r: Recovered) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dc_fields(r):
        if f.name in _DROPPED:
            continue
        value = getattr(r, f.name)
        if isinstance(value, FailureState):
            value = [value.consecutive, value.last_failure_ns]
        elif isinstance(value, set):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _rec_from_json(d: dict[str, Any]) -> Recovered:
    r = Recovered()
    for f in dc_fields(r):
        if f.name in _DROPPED or f.name not in d:
            continue
        value = d[f.name]
        if f.name == "failures":
            value = FailureState(int(value[0]), None if value[1] is None else int(value[1]))
        elif f.name == "alarms":
            value = set(value)
        elif f.name in ("open_dose", "open_grant") and value is not None:
            value = tuple(value)
        setattr(r, f.name, value)
    return r


class ResumeFold:
    """The recovery fold plus the context seqs, fed one stored event at a time."""

    def __init__(self, start: dict[str, Any] | None = None) -> None:
        if start is None:
            self.rec = Recovered()
            self.context: dict[str, Any] = {}
        else:
            self.rec = _rec_from_json(start["rec"])
            self.context = {str(k): v for k, v in start["context"].items()}
        self.problems: list[str] = []

    def feed(self, stored: StoredEvent) -> None:
        ev = stored.event
        try:
            fold(self.rec, stored)
        except (KeyError, ValueError, TypeError) as err:
            self.problems.append(f"seq {stored.seq} ({ev.type}) is unreadable: {err!r}")
        # Only the window matters for these, and a checkpoint never carries them.
        self.rec.deliveries.clear()
        self.rec.dose_starts.clear()
        kind = ev.type
        f = ev.fields
        if kind == "new_patient":
            self.context = {k: v for k, v in self.context.items()
                            if k == "library" or k.startswith("pin:")}
            self.context["new_patient"] = stored.seq
        elif kind == "restarted":
            self.context["restarted"] = stored.seq
        elif kind == "state_changed" and f.get("from") == "stopped" and f.get("to") == "running":
            self.context["run"] = stored.seq
        elif kind == "dose_started" and f.get("source") == "pca":
            self.context["pca_start"] = stored.seq
        elif kind == "pib_skipped" or (kind == "dose_started"
                                       and f.get("source") == "intermittent"):
            # The PIB schedule counts every one since the new patient (pca.therapy.intermittent).
            self.context.setdefault("pib", []).append(stored.seq)
        elif kind == "prescription_activated":
            self.context["prescription"] = stored.seq
        elif kind == "drug_library_changed" and "text" in ev.fields:
            self.context["library"] = stored.seq
        elif kind == "pin_changed":
            self.context["pin:" + str(ev.fields.get("role", "clinician"))] = stored.seq

    def context_seqs(self) -> list[int]:
        seqs: list[int] = []
        for value in self.context.values():
            seqs.extend(value if isinstance(value, list) else [value])
        return sorted(int(s) for s in seqs)

    def checkpoint(self) -> dict[str, Any]:
        return {"v": FOLD_VERSION, "rec": _rec_to_json(self.rec),
                "context": {k: list(v) if isinstance(v, list) else v
                            for k, v in sorted(self.context.items())}}

    def recovered(self) -> Recovered:
        """A fresh copy of the fold so far (the caller may fold more onto it)."""
        return _rec_from_json(json.loads(dumps(self.checkpoint()))["rec"])


def dumps(checkpoint: dict[str, Any]) -> str:
    return json.dumps(checkpoint, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def usable(checkpoint_text: str) -> bool:
    """Made by this version of the fold (so resuming from it gives what a replay would)."""
    return f'"v":"{FOLD_VERSION}"' in checkpoint_text
