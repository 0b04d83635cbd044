"""`pca log export --format fhir|hl7`: the log in the formats hospitals import."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

FORMATS = ("fhir", "hl7")


def log_id(db: str | Path) -> str:
    """The id a log's exports carry, from its first event: pass it as `episode_id` when the
    rows are a --since/--until slice, so every slice names the same log and patients."""
    from pca.review.episode import episode_id_of
    from pca.store.eventlog import export_rows

    # The generator is dropped at once after its first row, which closes its connection.
    return episode_id_of(next(export_rows(db), None))


def log_steps_per_ml(db: str | Path) -> float | None:
    """The pump's calibration from the log's start: pass it as `steps_per_ml` with a slice."""
    from pca.review.episode import steps_per_ml_of
    from pca.store.eventlog import export_rows

    return steps_per_ml_of(export_rows(db))


def export(fmt: str, rows: Iterable[dict[str, Any]], out: IO[str], *,
           episode_id: str | None = None, steps_per_ml: float | None = None) -> int:
    """Write `rows` (as `export_rows` yields them) to `out` in `fmt`.

    fhir: one FHIR R4 transaction Bundle (JSON), validated; returns its number of entries.
    hl7: one HL7 v2.6 ORU^R42 (IHE PCD-10) per delivery event; returns the number of messages.
    `episode_id` names the log in identifiers; by default it is derived from the first row,
    so pass it when exporting part of a log (--since/--until) that must keep the same ids.
    """
    # Imported here so `pca log export --format csv` never pays for the FHIR and HL7 models.
    if fmt == "fhir":
        from pca.review.fhir import write_bundle

        return write_bundle(rows, out, episode_id=episode_id, steps_per_ml=steps_per_ml)
    if fmt == "hl7":
        from pca.review.hl7 import write_messages

        return write_messages(rows, out, episode_id=episode_id, steps_per_ml=steps_per_ml)
    raise ValueError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
