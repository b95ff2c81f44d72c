"""What a second `gradcam-viewer` hands the running viewer: the message (any bytes are a request
of this version or a refusal, never an exception of another kind), how the running viewer reads
the arguments (relative paths against the sender's folder; a mistake never exits the viewer),
and the order in which the window carries requests out (one question at a time)."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from gradcam_viewer.cli.common import CommandError
from gradcam_viewer.cli.gui import requests_from
from gradcam_viewer.launch.handover import (
    MAX_MESSAGE,
    VERSION,
    Handover,
    MessageError,
    Reply,
    read_reply,
    read_request,
    write_reply,
    write_request,
)
from gradcam_viewer.launch.queue import LaunchQueue
from gradcam_viewer.launch.requests import (
    BadLink,
    ModelChoice,
    OpenFiles,
    OpenStudy,
    StudyRequest,
)

UID = "1.2.826.0.1.3680043.8.498.1"
CWD = str(Path("/home/reader/worklist").resolve())


# ------------------------------------------------------------------ the message ----
@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\0")), max_size=20),
       st.text(alphabet=st.characters(exclude_characters="\0")).map(lambda t: CWD + "/" + t))
def test_every_request_survives_the_wire(argv, cwd):
    """Including lone surrogates (file names that are not UTF-8, as Python holds them)."""
    data = write_request(Handover(tuple(argv), cwd))
    assert data.endswith(b"\n") and data.count(b"\n") == 1 and data.isascii()
    assert read_request(data[:-1]) == Handover(tuple(argv), cwd)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.binary(max_size=60).map(lambda b: b'{"version": 1, "argv": ' + b),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                              | st.text(max_size=8),
                              lambda inner: st.lists(inner, max_size=4)
                              | st.dictionaries(st.sampled_from(["version", "argv", "cwd", "x"]),
                                                inner, max_size=4),
                              max_leaves=12).map(lambda v: json.dumps(v).encode())))
def test_any_bytes_are_a_request_or_a_refusal(data):
    """Random bytes and random JSON: a valid request, or MessageError; nothing else escapes
    (the viewer logs the refusal and carries nothing out)."""
    try:
        handover = read_request(data)
    except MessageError as exc:
        assert str(exc)
        return
    assert isinstance(handover, Handover) and Path(handover.cwd).is_absolute()
    assert all(isinstance(a, str) and "\0" not in a for a in handover.argv)


@pytest.mark.parametrize("message, why", [
    ({"version": 2, "argv": [], "cwd": CWD}, "version"),
    ({"version": True, "argv": [], "cwd": CWD}, "version"),  # True == 1 in Python
    ({"version": 1.0, "argv": [], "cwd": CWD}, "version"),
    ({"version": "1", "argv": [], "cwd": CWD}, "version"),
    ({"argv": [], "cwd": CWD}, "version"),
    ({"version": 1, "argv": []}, "keys"),
    ({"version": 1, "argv": [], "cwd": CWD, "run": "rm -rf ~"}, "keys"),
    ({"version": 1, "argv": "a.dcm", "cwd": CWD}, "argv"),
    ({"version": 1, "argv": [1], "cwd": CWD}, "argv"),
    ({"version": 1, "argv": [], "cwd": "relative/folder"}, "cwd"),
    ({"version": 1, "argv": [], "cwd": None}, "cwd"),
    ({"version": 1, "argv": ["a\0b"], "cwd": CWD}, "NUL"),
    ([1, "a.dcm"], "object"),
])
def test_messages_of_another_shape_are_refused(message, why):
    with pytest.raises(MessageError, match=why):
        read_request(json.dumps(message).encode())


def test_oversized_deep_and_broken_messages_are_refused():
    with pytest.raises(MessageError, match="longer"):
        read_request(b" " * (MAX_MESSAGE + 1))
    with pytest.raises(MessageError, match="RecursionError"):
        read_request(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(MessageError, match="not JSON"):
        read_request(b"\xff\xfe{}")
    with pytest.raises(MessageError, match="not JSON"):
        read_request(b'{"version": 1' + b"9" * 5000 + b"}")  # int past Python's digit limit


def test_replies():
    for reply in (Reply(True), Reply(False, "a reason")):
        assert read_reply(write_reply(reply).rstrip(b"\n")) == reply
    with pytest.raises(MessageError):
        read_reply(json.dumps({"version": VERSION, "accepted": "yes", "reason": ""}).encode())


# ------------------------------------------------------------------ reading the arguments ----
def test_relative_paths_resolve_against_the_sender_folder(tmp_path):
    got = requests_from(Handover(("scan.dcm", "../other", "/abs/x.png", "file:///tmp/a%20b.dcm"),
                                 CWD))
    assert got == [OpenFiles((Path(CWD, "scan.dcm"), Path(CWD, "../other"), Path("/abs/x.png"),
                              Path("/tmp/a b.dcm")))]


def test_model_options_and_links_are_read_too():
    link = f"gradcam-viewer://open?node=PACS&studyUID={UID}"
    got = requests_from(Handover(("--model", "m.keras", "a.dcm", link,
                                  "gradcam-viewer://open?node=PACS"), CWD))
    assert got[:2] == [
        OpenFiles((Path(CWD, "a.dcm"),), ModelChoice("keras", Path(CWD, "m.keras"))),
        OpenStudy(StudyRequest("PACS", study_uid=UID), confirm=True)]
    assert isinstance(got[2], BadLink) and "study UID" in got[2].reason  # for the window to say


def test_a_link_value_that_looks_like_an_option_stays_a_value():
    got = requests_from(Handover(("gradcam-viewer://open?node=PACS&accession=--model%3D%2Fx",),
                                 CWD))
    assert got == [OpenStudy(StudyRequest("PACS", accession="--model=/x"), confirm=True)]


def test_the_open_command_is_read_as_a_study_without_question():
    got = requests_from(Handover(("open", "--node", "PACS", "--accession", "A1",
                                  "--patient-id", "P7"), CWD))
    assert got == [OpenStudy(StudyRequest("PACS", accession="A1", patient_id="P7"))]


@pytest.mark.parametrize("argv", [
    ("-h",), ("--help",), ("--bogus",), ("--self-test",), ("--version",),
    ("--reference-images", "r"), ("open",), ("open", "--node", "PACS"),
    ("open", "--node", "PACS", "--study-uid", "1.2", "--accession", "A"),
    ("open", "--node", "PACS", "--study-uid", "x/y"), ("open", "-h"),
    ("open", "--node", "PACS", "--study-uid", UID, "--patient-id", "P"),
])
def test_a_mistake_in_handed_arguments_never_exits_the_viewer(argv, capsys):
    """The running viewer reads them with parsers that raise CommandError: argparse's own
    exit (and its printed help) would close the window of the user."""
    with pytest.raises(CommandError):
        requests_from(Handover(argv, CWD))
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------ the order ----
def _files(n):
    return OpenFiles((Path(f"/f{n}.dcm"),))


def _link(n):
    return OpenStudy(StudyRequest("PACS", study_uid=f"1.{n}"), confirm=True)


def _command(n):
    return OpenStudy(StudyRequest("PACS", study_uid=f"2.{n}"))


events = st.lists(st.one_of(st.tuples(st.just("push"), st.sampled_from([_files, _link, _command]),
                                      st.integers(0, 10**6)),
                            st.tuples(st.just("answer"), st.booleans())), max_size=40)


@settings(max_examples=500, deadline=None)
@given(events)
def test_requests_are_carried_out_in_order_one_question_at_a_time(sequence):
    """Random pushes and answers: what runs is what was pushed, in order, minus the links the
    user said no to; a link runs only after its yes; one question at a time; nothing pushed
    after an unanswered link runs before it is answered; an answer with no question does
    nothing."""
    queue, pushed, ran, said_no, asked = LaunchQueue(), [], [], [], []
    for event in sequence:
        if event[0] == "push":
            request = event[1](event[2])
            pushed.append(request)
            was_asking = queue.asking
            steps = queue.push(request)
            if was_asking is not None:
                assert steps.run == () and steps.ask is None and queue.asking is was_asking
        else:
            question = queue.asking
            steps = queue.answer(event[1])
            if question is None:
                assert steps.run == () and steps.ask is None
            elif event[1]:
                assert steps.run[:1] == (question,)
            else:
                said_no.append(question)
                assert all(r is not question for r in steps.run)
        ran += steps.run
        if steps.ask is not None:
            assert queue.asking is steps.ask and steps.ask.confirm
            asked.append(steps.ask)
        assert len(set(map(id, asked))) == len(asked)  # each link asked about once
    refused = set(map(id, said_no))
    settled = [r for r in pushed if id(r) not in refused]
    # in order, none skipped or run twice (the same objects: equal requests may repeat)
    assert list(map(id, ran)) == list(map(id, settled[:len(ran)]))
    waiting = settled[len(ran):]
    if waiting:  # what has not run waits behind the question
        assert queue.asking is waiting[0]
        assert len(queue) == len(waiting) - 1
    else:
        assert queue.asking is None and len(queue) == 0

