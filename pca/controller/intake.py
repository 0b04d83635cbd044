"""Pharmacy intake: prescription files wait for a clinician, drug libraries for an admin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pca.controller.inputs import PendingLibrary, PendingPrescription
from pca.controller.journal import Journal
from pca.controller.panel import RxReview
from pca.controller.profile import PumpProfile
from pca.controller.sessions import Sessions
from pca.therapy.drugs import DrugLibrary, LibraryError, load_pharmacy_library, replace_library
from pca.therapy.prescription import PrescriptionFormatError, parse_request, validate


class Intake:
    """Checks what arrives from the pharmacy and holds the drug library in force. Nothing
    that arrives changes therapy by itself."""

    def __init__(self, library: DrugLibrary, profile: PumpProfile, journal: Journal,
                 sessions: Sessions) -> None:
        self.library = library
        self.profile = profile
        self.journal = journal
        self.sessions = sessions
        self._installed: tuple[str, str] | None = None  # last library the log installed

    def receive(self, item: PendingPrescription | PendingLibrary) -> None:
        """Log what arrived and what checking it found."""
        fields: dict[str, Any] = {"source": item.source}
        if isinstance(item, PendingPrescription):
            review = self.review_prescription(item)
            fields["rx_id"] = item.rx_id
            if review.prescription is None:
                fields["errors"] = list(review.errors)
            elif review.soft:
                fields["soft_limits"] = list(review.soft)
            self.journal.emit("prescription_received", "system", **fields)
        else:
            checked = self.review_library(item)
            if isinstance(checked, str):
                fields["error"] = checked
            else:
                fields.update(version=checked.version, checksum=checked.checksum)
            self.journal.emit("drug_library_received", "system", **fields)

    def review_prescription(self, item: PendingPrescription) -> RxReview:
        """SR-8 against the library in force, with overrides allowed: what activation
        would give and which soft limits it would override. Changes nothing."""
        if item.problem is not None:
            return RxReview(None, None, (f"{item.source}: {item.problem}",), ())
        try:
            req = parse_request(item.request, item.source)
        except PrescriptionFormatError as err:
            return RxReview(None, None, (str(err),), ())
        verdict = validate(req, self.library, bolus_rate_ml_h=self.profile.bolus_rate_ml_h,
                           confirm_soft=True)
        return RxReview(req, verdict.prescription, verdict.errors, verdict.soft)

    def dismiss_prescription(self, item: PendingPrescription, reason: str) -> None:
        self.journal.emit("prescription_dismissed", "clinician", source=item.source,
                          rx_id=item.rx_id, reason=reason)

    def review_library(self, item: PendingLibrary) -> DrugLibrary | str:
        try:
            return load_pharmacy_library(item.text, item.source)
        except LibraryError as err:
            return str(err)

    def install_library(self, item: PendingLibrary, pin: str) -> str | None:
        """Admin only, PIN typed again: a library that fails its checksum or checks is
        refused and the one in force stays."""
        if not self.sessions.admin_open():
            return "an admin session is needed to install a drug library"
        if self.sessions.check_pin(pin, "admin") != "ok":
            return "wrong admin PIN: nothing changed"
        previous = self.library
        self.library, error = replace_library(previous, item.text, item.source)
        if error is not None:
            self.journal.emit("drug_library_rejected", "clinician", source=item.source,
                              error=error)
            return error
        self.journal.emit("drug_library_changed", "clinician", by="admin", source=item.source,
                          version=self.library.version, checksum=self.library.checksum,
                          previous_version=previous.version,
                          previous_checksum=previous.checksum, text=item.text)
        return None

    # ---- at start-up -------------------------------------------------------------------
    def observe(self, type_: str, fields: Mapping[str, Any], pump_ns: int) -> None:
        if type_ == "drug_library_changed" and "text" in fields:
            self._installed = (str(fields["text"]), str(fields.get("source", "")))

    def restore(self) -> None:
        """After the log is replayed: the last library an admin installed is in force."""
        if self._installed is not None:
            self.library = replace_library(self.library, *self._installed)[0]
