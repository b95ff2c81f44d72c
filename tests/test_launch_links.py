"""gradcam-viewer:// links and the study requests they make: what a worklist writes opens, and a
hostile link (a path, a host, a command, extra parameters, tricky encodings, very long values,
another scheme) is refused with a reason, never half-read."""

import string

import pytest
from hypothesis import given, settings, strategies as st

from gradcam_viewer.launch.links import (
    MAX_LINK,
    LinkError,
    file_url_path,
    is_link,
    make_link,
    parse_link,
)
from gradcam_viewer.launch.requests import RequestError, StudyRequest

UID = "1.2.826.0.1.3680043.8.498.10234567890123456789"


@pytest.mark.parametrize("link, expected", [
    (f"gradcam-viewer://open?node=PACS&studyUID={UID}", StudyRequest("PACS", study_uid=UID)),
    (f"gradcam-viewer://open/?node=PACS&studyUID={UID}",  # browsers add the slash
     StudyRequest("PACS", study_uid=UID)),
    (f"GRADCAM-VIEWER://OPEN?NODE=PACS&studyuid={UID}", StudyRequest("PACS", study_uid=UID)),
    ("gradcam-viewer://open?node=Main%20PACS&accession=A%2F17&patientID=P%C3%A9-1",
     StudyRequest("Main PACS", accession="A/17", patient_id="Pé-1")),
    ("gradcam-viewer://open?node=Main+PACS&accession=ACC+1",  # form encoding: + is a space
     StudyRequest("Main PACS", accession="ACC 1")),
    ("gradcam-viewer://open?accession=12345&node=PACS",  # any order
     StudyRequest("PACS", accession="12345")),
])
def test_links_a_worklist_writes_open(link, expected):
    assert parse_link(link) == expected


HOSTILE = {
    # paths
    "a path instead of open": f"gradcam-viewer:///etc/passwd?node=PACS&studyUID={UID}",
    "a path after open": f"gradcam-viewer://open/etc/passwd?node=PACS&studyUID={UID}",
    "dot-dot after open": f"gradcam-viewer://open/../../x?node=PACS&studyUID={UID}",
    "dot-dot node": f"gradcam-viewer://open?node=../../etc&studyUID={UID}",
    "encoded dot-dot node": f"gradcam-viewer://open?node=..%2F..%2Fetc&studyUID={UID}",
    "backslash node": f"gradcam-viewer://open?node=..%5C..%5Cwin&studyUID={UID}",
    "a file parameter": f"gradcam-viewer://open?node=PACS&studyUID={UID}&file=/etc/passwd",
    "a path as UID": "gradcam-viewer://open?node=PACS&studyUID=/etc/passwd",
    "dot-dot UID": "gradcam-viewer://open?node=PACS&studyUID=1.2/../../3",
    # hosts
    "a host instead of open": f"gradcam-viewer://evil.example?node=PACS&studyUID={UID}",
    "a user": f"gradcam-viewer://me@open?node=PACS&studyUID={UID}",
    "open as a user": f"gradcam-viewer://open@evil.example?node=PACS&studyUID={UID}",
    "a port": f"gradcam-viewer://open:4242?node=PACS&studyUID={UID}",
    "a host as node": f"gradcam-viewer://open?node=evil.example:4242&studyUID={UID}",
    "an AE address as node": f"gradcam-viewer://open?node=ORTHANC@10.0.0.1:4242&studyUID={UID}",
    "a host parameter": f"gradcam-viewer://open?node=PACS&studyUID={UID}&host=10.0.0.1",
    # commands
    "another command": f"gradcam-viewer://explain?node=PACS&studyUID={UID}",
    "a cmd parameter": f"gradcam-viewer://open?node=PACS&studyUID={UID}&cmd=rm%20-rf",
    "a shell in the UID": "gradcam-viewer://open?node=PACS&studyUID=1.2%3Brm%20-rf%20~",
    # parameters
    "no parameters": "gradcam-viewer://open",
    "empty query": "gradcam-viewer://open?",
    "no node": f"gradcam-viewer://open?studyUID={UID}",
    "no study": "gradcam-viewer://open?node=PACS",
    "UID and accession": f"gradcam-viewer://open?node=PACS&studyUID={UID}&accession=1",
    "patient ID with a UID": f"gradcam-viewer://open?node=PACS&studyUID={UID}&patientID=7",
    "node twice": f"gradcam-viewer://open?node=PACS&node=OTHER&studyUID={UID}",
    "UID twice": f"gradcam-viewer://open?node=PACS&studyUID={UID}&studyUID=1.2",
    "a parameter without value": f"gradcam-viewer://open?node=PACS&studyUID={UID}&accession",
    "empty pair": f"gradcam-viewer://open?node=PACS&&studyUID={UID}",
    "empty node": f"gradcam-viewer://open?node=&studyUID={UID}",
    "blank node": f"gradcam-viewer://open?node=%20%20&studyUID={UID}",
    "empty UID": "gradcam-viewer://open?node=PACS&studyUID=",
    "wildcard accession": "gradcam-viewer://open?node=PACS&accession=*",
    "wildcard patient": "gradcam-viewer://open?node=PACS&accession=1&patientID=%3F",
    "wildcard UID": "gradcam-viewer://open?node=PACS&studyUID=1.2.*",
    "a fragment": f"gradcam-viewer://open?node=PACS&studyUID={UID}#x",
    "a DICOM value separator": "gradcam-viewer://open?node=PACS&accession=1%5C2",
    # encodings
    "NUL": f"gradcam-viewer://open?node=PA%00CS&studyUID={UID}",
    "newline": "gradcam-viewer://open?node=PACS&accession=1%0A2",
    "escape character": "gradcam-viewer://open?node=PACS&accession=%1B%5B31m",
    "double-encoded slash in UID": "gradcam-viewer://open?node=PACS&studyUID=1.2%252F3",
    "overlong UTF-8 dot": f"gradcam-viewer://open?node=%C0%AE%C0%AE&studyUID={UID}",
    "not UTF-8": "gradcam-viewer://open?node=%FF%FE&accession=1",
    "bad escape": f"gradcam-viewer://open?node=PA%G1&studyUID={UID}",
    "lone percent": f"gradcam-viewer://open?node=PACS%&studyUID={UID}",
    "raw space": f"gradcam-viewer://open?node=Main PACS&studyUID={UID}",
    "raw non-ASCII": f"gradcam-viewer://open?node=PACSé&studyUID={UID}",
    "raw tab": f"gradcam-viewer://open?node=PACS\t&studyUID={UID}",
    "trailing newline": f"gradcam-viewer://open?node=PACS&studyUID={UID}\n",
    "Arabic-Indic digits in UID": "gradcam-viewer://open?node=PACS&studyUID=%D9%A1.%D9%A2",
    "fullwidth digits in UID": "gradcam-viewer://open?node=PACS&studyUID=%EF%BC%91.2",
    # lengths
    "65-character UID": "gradcam-viewer://open?node=PACS&studyUID=1." + "2" * 63,
    "17-character accession": "gradcam-viewer://open?node=PACS&accession=" + "A" * 17,
    "65-character patient ID": "gradcam-viewer://open?node=PACS&accession=1&patientID="
                               + "P" * 65,
    "65-character node": f"gradcam-viewer://open?node={'N' * 65}&studyUID={UID}",
    "very long link": f"gradcam-viewer://open?node=PACS&studyUID={UID}&accession="
                      + "A" * MAX_LINK,
    "megabyte link": "gradcam-viewer://open?node=" + "%41" * 400_000,
    # other schemes and spellings
    "http": f"http://open?node=PACS&studyUID={UID}",
    "file": "file:///etc/passwd",
    "javascript": "javascript:alert(1)",
    "a longer scheme": f"gradcam-viewer2://open?node=PACS&studyUID={UID}",
    "no slashes": f"gradcam-viewer:open?node=PACS&studyUID={UID}",
    "one slash": f"gradcam-viewer:/open?node=PACS&studyUID={UID}",
    "empty": "",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_links_are_refused(name):
    with pytest.raises(LinkError) as refused:
        parse_link(HOSTILE[name])
    assert str(refused.value)  # a reason, for the window to show


def test_long_values_are_refused_by_length_not_truncated():
    with pytest.raises(LinkError, match="64 characters"):
        parse_link("gradcam-viewer://open?node=PACS&studyUID=1." + "2" * 63)
    with pytest.raises(LinkError, match="2048"):
        parse_link(HOSTILE["very long link"])


def test_refusals_name_what_is_wrong():
    with pytest.raises(LinkError, match="cmd"):
        parse_link(HOSTILE["a cmd parameter"])
    with pytest.raises(LinkError, match="twice"):
        parse_link(HOSTILE["node twice"])
    with pytest.raises(LinkError, match="wildcard"):
        parse_link(HOSTILE["wildcard accession"])
    with pytest.raises(LinkError, match="not an address"):
        parse_link(HOSTILE["a host as node"])


def test_is_link_tells_links_from_file_names():
    assert is_link("gradcam-viewer://open?node=A&studyUID=1")
    assert is_link("Gradcam-Viewer:anything")  # then refused by parse_link, with a reason
    for name in ("scan.dcm", "gradcam-viewer", "gradcam-viewer.dcm", "/tmp/gradcam-viewer:x",
                 "C:\\scans\\a.dcm", "file:///tmp/a.dcm"):
        assert not is_link(name)


def test_file_urls_become_paths():
    assert str(file_url_path("file:///tmp/a%20b/%C3%A9.dcm")) == "/tmp/a b/é.dcm"
    assert str(file_url_path("file://localhost/tmp/x.dcm")) == "/tmp/x.dcm"
    # a byte that is not UTF-8 stays the byte the file system holds (as os.fsdecode reads it)
    import os

    assert os.fsencode(file_url_path("file:///tmp/%FF.dcm")) == b"/tmp/\xff.dcm"
    assert file_url_path("file://server/share/x.dcm") is None  # not this machine
    assert file_url_path("/tmp/x.dcm") is None


# ------------------------------------------------------------------ properties ----
_chars = st.characters(codec="utf-8", categories=("L", "N", "P", "S"), include_characters=" ",
                       exclude_characters="\\*?/:@")


def _value(limit):
    return st.text(alphabet=_chars, min_size=1).map(lambda s: s[:limit]).filter(str.strip)


studies = st.one_of(
    st.builds(StudyRequest, node=_value(64),
              study_uid=st.from_regex(r"[0-9]{1,8}(\.[0-9]{1,8}){0,6}", fullmatch=True)),
    st.builds(StudyRequest, node=_value(64), accession=_value(16),
              patient_id=st.one_of(st.just(""), _value(64))),
)


@settings(max_examples=300, deadline=None)
@given(studies)
def test_every_study_survives_its_link(study):
    link = make_link(study)
    assert len(link) <= MAX_LINK
    assert parse_link(link) == study


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(), st.text().map(lambda t: "gradcam-viewer://open?" + t),
                 st.text(alphabet=string.printable).map(lambda t: "gradcam-viewer://open?node=P&"
                                                        + t)))
def test_any_text_is_a_study_or_a_refusal(text):
    """Whatever the text, the parser returns a checked StudyRequest or raises LinkError: no
    other exception, nothing half-parsed."""
    try:
        study = parse_link(text)
    except LinkError:
        return
    assert isinstance(study, StudyRequest)
    assert parse_link(make_link(study)) == study


def test_requests_check_their_values_whoever_makes_them():
    with pytest.raises(RequestError):
        StudyRequest("PACS")
    with pytest.raises(RequestError):
        StudyRequest("PACS", study_uid="1.2", accession="3")
    with pytest.raises(RequestError):
        StudyRequest("PACS", study_uid="1..2")
    with pytest.raises(RequestError):
        StudyRequest("PACS", study_uid=".1.2")
    with pytest.raises(RequestError):
        StudyRequest("", study_uid="1.2")
    # a leading zero breaks PS3.5, but modalities write them and the study must still open
    assert StudyRequest("PACS", study_uid="1.2.040.5").study_uid == "1.2.040.5"


def test_the_log_never_holds_an_accession_or_patient_id():
    study = StudyRequest("PACS", accession="ACC987", patient_id="PID123")
    assert "ACC987" not in study.log_text() and "PID123" not in study.log_text()
    assert "ACC987" in study.describe() and "PID123" in study.describe()
