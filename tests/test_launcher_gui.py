"""The window's side of a launch: a gradcam-viewer:// link asks once, naming the node and the
study, and only a yes retrieves it; an unknown node or a refused link is explained instead;
questions come one at a time; the `open` command needs no question; macOS's open-link event
takes the same way."""


import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from gradcam_viewer.launch.links import make_link
from gradcam_viewer.launch.requests import BadLink, OpenFiles, OpenStudy, StudyRequest
from gradcam_viewer.ui.launcher import Launcher
from gui_helpers import wait_shown
from launch_helpers import NODE, SAMPLE, CopyingRetrieval, configure_node

UID = "1.2.826.0.1.3680043.8.498.4242"


@pytest.fixture
def launcher(win, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_VIEWER_CONFIG_DIR", str(tmp_path / "config"))
    configure_node(tmp_path / "config")
    retrieval = CopyingRetrieval(win, tmp_path / "cache")
    result = Launcher(win, retrieval)
    result.retrieval = retrieval
    return result


def _button(box: QMessageBox, text: str):
    return next(b for b in box.buttons() if b.text().replace("&", "") == text)


def test_a_link_asks_once_naming_node_and_study_and_yes_opens_it(launcher, win, qtbot):
    launcher.submit(OpenStudy(StudyRequest(NODE, study_uid=UID), confirm=True))
    box = launcher.question
    assert box is not None and box.isVisible()
    assert f"'{NODE}'" in box.text() and UID in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)  # Enter: no
    assert launcher.retrieval.asked == []  # nothing retrieved before the yes
    qtbot.mouseClick(_button(box, "Retrieve and open"), qtbot_left())
    assert launcher.question is None
    assert launcher.retrieval.asked == [StudyRequest(NODE, study_uid=UID)]
    folder = launcher.retrieval.cache / UID
    wait_shown(qtbot, win, folder / "image.dcm")  # opened, with its heatmap
    assert win.session.image.metadata  # the retrieved object, read like any DICOM
    assert not [w for w in QApplication.topLevelWidgets()
                if isinstance(w, QMessageBox) and w.isVisible()]  # asked once, no second box


def test_no_retrieves_nothing(launcher, win, qtbot):
    launcher.submit(OpenStudy(StudyRequest(NODE, accession="ACC1", patient_id="PID7"),
                              confirm=True))
    box = launcher.question
    assert "ACC1" in box.text() and "PID7" in box.text()
    qtbot.mouseClick(_button(box, "Cancel"), qtbot_left())
    assert launcher.retrieval.asked == [] and win.session.image is None


def test_escape_is_no(launcher, qtbot):
    launcher.submit(OpenStudy(StudyRequest(NODE, study_uid=UID), confirm=True))
    box = launcher.question
    box.reject()
    assert launcher.retrieval.asked == [] and launcher.question is None


def test_an_unknown_node_is_explained_without_a_question(launcher, win):
    launcher.submit(OpenStudy(StudyRequest("Elsewhere", study_uid=UID), confirm=True))
    assert launcher.question is None and launcher.retrieval.asked == []
    assert "no PACS node is called 'Elsewhere'" in win.messages.last_error
    assert f"'{NODE}'" in win.messages.last_error  # names what is configured


def test_a_node_not_set_up_for_retrieve_is_explained_without_a_question(launcher, win):
    launcher.submit(OpenStudy(StudyRequest("Send only", study_uid=UID), confirm=True))
    assert launcher.question is None and launcher.retrieval.asked == []
    assert "'Send only' is not set up for query/retrieve" in win.messages.last_error


def test_questions_come_one_at_a_time_and_in_order(launcher, win, qtbot):
    first, second = (StudyRequest(NODE, study_uid=f"{UID}.{n}") for n in (1, 2))
    launcher.submit(OpenStudy(first, confirm=True))
    launcher.submit(OpenFiles((SAMPLE,)))  # waits behind the question
    launcher.submit(OpenStudy(second, confirm=True))
    assert launcher.question is not None and first.study_uid in launcher.question.text()
    assert win.session.asked[0] == []  # the files wait
    qtbot.mouseClick(_button(launcher.question, "Retrieve and open"), qtbot_left())
    # the first study and the files went; now the second link is asked about
    assert launcher.retrieval.asked == [first]
    assert launcher.question is not None and second.study_uid in launcher.question.text()
    assert win.session.asked[0] == [SAMPLE]
    qtbot.mouseClick(_button(launcher.question, "Cancel"), qtbot_left())
    assert launcher.retrieval.asked == [first] and launcher.question is None


def test_the_open_command_needs_no_question(launcher, win, qtbot):
    launcher.submit(OpenStudy(StudyRequest(NODE, study_uid=UID)))
    assert launcher.question is None
    assert launcher.retrieval.asked == [StudyRequest(NODE, study_uid=UID)]
    wait_shown(qtbot, win, launcher.retrieval.cache / UID / "image.dcm")


def test_a_refused_link_is_explained(launcher, win):
    launcher.submit(BadLink("the link has a path: it may only name a node and a study"))
    assert "was not opened: the link has a path" in win.messages.last_error


def test_no_retrieval_in_this_build_is_explained(win, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_VIEWER_CONFIG_DIR", str(tmp_path / "config"))
    configure_node(tmp_path / "config")
    Launcher(win).submit(OpenStudy(StudyRequest(NODE, study_uid=UID)))
    assert "cannot retrieve studies" in win.messages.last_error  # (no StudyOpener given)


def test_macos_open_link_event_asks_too(launcher, qtbot):
    """macOS hands a running application links and files as FileOpen events."""
    event = QFileOpenEvent(QUrl(make_link(StudyRequest(NODE, study_uid=UID))))
    assert launcher.eventFilter(QApplication.instance(), event)
    assert launcher.question is not None and UID in launcher.question.text()
    launcher.question.reject()
    hostile = QFileOpenEvent(QUrl("gradcam-viewer://open/etc/passwd?node=x&studyUID=1"))
    assert launcher.eventFilter(QApplication.instance(), hostile)
    assert launcher.question is None and launcher.retrieval.asked == []


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
