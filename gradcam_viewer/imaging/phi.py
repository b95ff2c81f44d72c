"""Which DICOM attributes identify a patient (after the PS3.15 Basic Profile, simplified).

Identifying fields are hidden in the GUI until asked for, never logged, and left out of
exports unless the user includes them.
"""

from __future__ import annotations

IDENTIFYING_KEYWORDS = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientBirthName",
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientAddress",
    "PatientTelephoneNumbers", "PatientMotherBirthName", "PatientComments", "MedicalRecordLocator",
    "IssuerOfPatientID", "MilitaryRank", "BranchOfService", "EthnicGroup", "Occupation",
    "ResponsiblePerson", "ResponsibleOrganization", "AccessionNumber", "StudyID",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "ReferringPhysicianName", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "PerformingPhysicianName", "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord",
    "OperatorsName", "RequestingPhysician", "ScheduledPerformingPhysicianName",
    "DeviceSerialNumber", "AdmissionID", "RequestAttributesSequence", "PatientInsurancePlanCodeSequence",
    "CountryOfResidence", "RegionOfResidence", "PatientSize", "PatientWeight",
    "AdditionalPatientHistory", "PersonName",
})
IDENTIFYING_VRS = frozenset({"PN", "DA", "DT", "TM", "UI"})


def is_identifying(keyword: str, vr: str, private: bool) -> bool:
    """Names, IDs, dates, times, UIDs, institutions and private tags count as identifying."""
    return private or keyword in IDENTIFYING_KEYWORDS or vr in IDENTIFYING_VRS or vr == "SQ"
