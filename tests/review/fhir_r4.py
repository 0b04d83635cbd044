"""FHIR R4 (4.0.1) as the review tests check the export against: the elements and codes it may use.

The export is validated with fhir.resources' R4B models, and R4 servers read it. Each element
below was checked against the R4 StructureDefinitions (fhir.resources 6.4.0's R4 models) when
the export moved to R4B; the codes are R4's required value sets for those elements. A new
element in the export fails the review tests until someone has checked it in R4 and added it.
"""

from __future__ import annotations

from typing import Any

_R4_ELEMENT_PATHS = """
    AuditEvent.action
    AuditEvent.agent.requestor
    AuditEvent.agent.who.display
    AuditEvent.agent.who.reference
    AuditEvent.entity.detail.type
    AuditEvent.entity.detail.valueString
    AuditEvent.entity.name
    AuditEvent.entity.what.identifier.system
    AuditEvent.entity.what.identifier.value
    AuditEvent.outcome
    AuditEvent.outcomeDesc
    AuditEvent.recorded
    AuditEvent.source.observer.reference
    AuditEvent.subtype.code
    AuditEvent.subtype.display
    AuditEvent.subtype.system
    AuditEvent.type.code
    AuditEvent.type.display
    AuditEvent.type.system
    Bundle.entry.fullUrl
    Bundle.entry.request.ifNoneExist
    Bundle.entry.request.method
    Bundle.entry.request.url
    Bundle.timestamp
    Bundle.type
    Device.deviceName.name
    Device.deviceName.type
    Device.identifier.system
    Device.identifier.value
    Device.property.type.text
    Device.property.valueCode.text
    Device.property.valueQuantity.code
    Device.property.valueQuantity.system
    Device.property.valueQuantity.unit
    Device.property.valueQuantity.value
    Device.status
    Device.type.coding.code
    Device.type.coding.display
    Device.type.coding.system
    Device.type.text
    Device.version.value
    Medication.code.text
    Medication.ingredient.isActive
    Medication.ingredient.itemCodeableConcept.text
    Medication.ingredient.strength.denominator.code
    Medication.ingredient.strength.denominator.system
    Medication.ingredient.strength.denominator.unit
    Medication.ingredient.strength.denominator.value
    Medication.ingredient.strength.numerator.code
    Medication.ingredient.strength.numerator.system
    Medication.ingredient.strength.numerator.unit
    Medication.ingredient.strength.numerator.value
    MedicationAdministration.device.reference
    MedicationAdministration.dosage.dose.code
    MedicationAdministration.dosage.dose.system
    MedicationAdministration.dosage.dose.unit
    MedicationAdministration.dosage.dose.value
    MedicationAdministration.dosage.method.coding.code
    MedicationAdministration.dosage.method.coding.display
    MedicationAdministration.dosage.method.coding.system
    MedicationAdministration.dosage.method.text
    MedicationAdministration.dosage.rateQuantity.code
    MedicationAdministration.dosage.rateQuantity.system
    MedicationAdministration.dosage.rateQuantity.unit
    MedicationAdministration.dosage.route.coding.code
    MedicationAdministration.dosage.route.coding.display
    MedicationAdministration.dosage.route.coding.system
    MedicationAdministration.dosage.route.text
    MedicationAdministration.dosage.rateQuantity.value
    MedicationAdministration.dosage.text
    MedicationAdministration.effectivePeriod.end
    MedicationAdministration.effectivePeriod.start
    MedicationAdministration.identifier.system
    MedicationAdministration.identifier.value
    MedicationAdministration.medicationCodeableConcept.text
    MedicationAdministration.medicationReference.reference
    MedicationAdministration.note.text
    MedicationAdministration.performer.actor.display
    MedicationAdministration.status
    MedicationAdministration.statusReason.text
    MedicationAdministration.subject.display
    MedicationAdministration.subject.identifier.system
    MedicationAdministration.subject.identifier.value
    Observation.category.coding.code
    Observation.category.coding.display
    Observation.category.coding.system
    Observation.code.coding.code
    Observation.code.coding.display
    Observation.code.coding.system
    Observation.code.text
    Observation.device.reference
    Observation.effectiveDateTime
    Observation.identifier.system
    Observation.identifier.value
    Observation.status
    Observation.subject.display
    Observation.subject.identifier.system
    Observation.subject.identifier.value
    Observation.valueQuantity.code
    Observation.valueQuantity.system
    Observation.valueQuantity.unit
    Observation.valueQuantity.value
"""
R4_ELEMENTS = frozenset(_R4_ELEMENT_PATHS.split())

R4_CODES: dict[str, frozenset[str]] = {
    "Bundle.type": frozenset({"document", "message", "transaction", "transaction-response",
                              "batch", "batch-response", "history", "searchset", "collection"}),
    "Bundle.entry.request.method": frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}),
    "Device.status": frozenset({"active", "inactive", "entered-in-error", "unknown"}),
    "Device.deviceName.type": frozenset({"udi-label-name", "user-friendly-name",
                                         "patient-reported-name", "manufacturer-name",
                                         "model-name", "other"}),
    "MedicationAdministration.status": frozenset({"in-progress", "not-done", "on-hold",
                                                  "completed", "entered-in-error", "stopped",
                                                  "unknown"}),
    "Observation.status": frozenset({"registered", "preliminary", "final", "amended",
                                     "corrected", "cancelled", "entered-in-error", "unknown"}),
    "AuditEvent.action": frozenset({"C", "R", "U", "D", "E"}),
    "AuditEvent.outcome": frozenset({"0", "4", "8", "12"}),
}


def _walk(obj: Any, path: str, out: dict[str, set[str]]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key != "resourceType":
                _walk(value, f"{path}.{key}", out)
    elif isinstance(obj, list):
        for value in obj:
            _walk(value, path, out)
    else:
        out.setdefault(path, set()).add(str(obj))


def _leaves(bundle: dict[str, Any]) -> dict[str, set[str]]:
    """Every leaf of the bundle by its element path (a resource's path starts at its type)."""
    out: dict[str, set[str]] = {}
    _walk({k: v for k, v in bundle.items() if k != "entry"}, "Bundle", out)
    for entry in bundle.get("entry", []):
        _walk({k: v for k, v in entry.items() if k != "resource"}, "Bundle.entry", out)
        resource = entry["resource"]
        _walk(resource, resource["resourceType"], out)
    return out


def elements_of(bundle: dict[str, Any]) -> set[str]:
    return set(_leaves(bundle))


def codes_of(bundle: dict[str, Any]) -> dict[str, set[str]]:
    """The values written for each element that R4 binds to a required code list."""
    return {path: values for path, values in _leaves(bundle).items() if path in R4_CODES}
