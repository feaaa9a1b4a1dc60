"""A case in the standards a trial's data system and a hospital accept: HL7 FHIR R5
(``fhir``), CDISC ODM 1.3.2 (``odm``), a REDCap import (``redcap``). Each takes the case as
the case book shows it and its injections as the reports detail them (``case_export``)."""
