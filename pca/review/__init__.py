"""Clinical review of an event log: FHIR R4 and HL7 v2 (IHE PCD-10) exports and the report."""
