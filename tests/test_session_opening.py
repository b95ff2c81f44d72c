"""Opening what the user asked for (files, folders, media) once the Studies panel's scan has
listed it: which image opens first, and what the user is told."""

from pathlib import Path

from gradcam_viewer.session.controller import OpenRequest, SessionController

A, B, C = Path("/cd/IM1"), Path("/cd/IM2"), Path("/cd/IM3")


def _opened(effects) -> Path:
    (request,) = effects.requests
    assert isinstance(request, OpenRequest)
    return request.path


def test_the_image_asked_for_first_opens_and_paging_goes_on_from_it():
    s = SessionController()
    s.ask([Path("/cd")], first=B)
    effects = s.listed([A, B, C], [], [])
    assert _opened(effects) == B and not effects.notices and not effects.errors
    assert s.files.paths == [A, B, C] and _opened(s.step(1)) == C


def test_without_a_listed_first_the_first_image_opens():
    s = SessionController()
    s.ask([Path("/cd")], first=Path("/elsewhere.dcm"))
    assert _opened(s.listed([A, B], [], [])) == A


def test_a_named_file_that_is_no_image_is_opened_so_that_the_loader_says_why():
    s = SessionController()
    s.ask([Path("/notes.txt")])
    assert _opened(s.listed([], [Path("/notes.txt")], [])) == Path("/notes.txt")


def test_nothing_found_is_an_error_naming_what_was_asked_for_and_why():
    s = SessionController()
    s.ask([Path("/empty"), Path("/cd")])
    effects = s.listed([], [], ["DICOMDIR cannot be read"])
    assert not effects.requests
    assert effects.errors == ["No image files found in empty, cd.\nDICOMDIR cannot be read"]


def test_notes_and_rejected_files_are_told_at_most_20_lines():
    s = SessionController()
    s.ask([Path("/cd"), Path("/x.txt")])
    notes = [f"warning {i}" for i in range(25)]
    effects = s.listed([A], [Path("/x.txt")], notes)
    assert _opened(effects) == A
    (told,) = effects.notices
    assert told.splitlines() == notes[:20]
    effects = s.listed([A], [Path("/x.txt")], [])
    assert effects.notices == ["'x.txt' is not an image file."]
