"""File > Open from PACS in the real window against a real Orthanc: query, expand a study,
retrieve it, the Studies panel lists it as opening its folder would, and the first image opens
with its own heatmap. Also the worklist entry point (`MainWindow.open_study`) by accession."""

from pathlib import Path

import numpy as np
import pydicom
import pytest

from gradcam_viewer.imaging import scan_media
from gradcam_viewer.launch.requests import RequestError, StudyRequest
from gradcam_viewer.pacs import save_nodes
from gui_helpers import wait_shown


@pytest.fixture
def pacs_config(tmp_path, monkeypatch, qr_pacs):
    """The test PACS as the one configured node; a cache of the test's own."""
    monkeypatch.setenv("GRADCAM_VIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("GRADCAM_VIEWER_CACHE_DIR", str(tmp_path / "cache"))
    save_nodes([qr_pacs.node(method="get")])
    return tmp_path / "cache"


def test_query_expand_retrieve_and_read(win, qtbot, qr_pacs, pacs_config, reference):
    study = qr_pacs.study("ACC1001")  # 2 series of 2 CR images
    win.act["open_pacs"].trigger()
    dialog = win.pacs_open.dialog
    assert dialog is not None and dialog.node() == qr_pacs.node(method="get")
    dialog.patient_id.setText(study.patient_id)
    dialog.query_button.click()
    qtbot.waitUntil(lambda: dialog.answer is not None and not dialog.querying, timeout=30_000)
    assert [s.accession for s in dialog.studies] == ["ACC1002", "ACC1001"]  # newest first
    # names follow "Show patient-identifying fields" (off by default)
    assert dialog.tree.topLevelItem(0).text(1) == "Patient 1"
    win.tabs.metadata.show_identifying.setChecked(True)
    dialog.fill()
    assert dialog.tree.topLevelItem(0).text(1) == "Müller Jürgen (QR-001)"

    item = dialog.tree.topLevelItem(1)
    item.setExpanded(True)
    qtbot.waitUntil(lambda: study.study_uid in dialog.series, timeout=30_000)
    titles = [item.child(i).text(0) for i in range(item.childCount())]
    assert titles == ["#1 series 1", "#2 series 2"]

    dialog.tree.setCurrentItem(item)
    dialog.retrieve_selected()
    folder = pacs_config / study.study_uid
    qtbot.waitUntil(lambda: win.pacs_open.last_report is not None, timeout=60_000)
    report = win.pacs_open.last_report
    assert report.ok and len(report.stored) == 4, report.details()

    # the Studies panel shows what opening the study's folder would show, in the same order
    scanned = scan_media([folder]).catalogue
    qtbot.waitUntil(lambda: win.studies.catalogue.paths() == scanned.paths(), timeout=10_000)
    assert win.session.files.paths == scanned.paths()
    # the first image to arrive opened at once, and keeps its place in the reading order
    first = report.stored[0]
    result = wait_shown(qtbot, win, first)
    assert win.session.files.current == first
    _, explain = reference
    expected = explain(first)
    assert np.allclose(result.probabilities, expected.probabilities[0], atol=1e-5)
    assert win.studies.tree.topLevelItemCount() == 1
    assert "arriving" not in win.studies.status.text()


def test_open_study_by_accession_for_a_worklist(win, qtbot, qr_pacs, pacs_config):
    study = qr_pacs.study("ACC2001")  # one DX, RLE Lossless
    win.open_study(StudyRequest("Test PACS", accession="ACC2001", patient_id="QR-002"))
    path = pacs_config / study.study_uid / f"{pydicom.dcmread(study.files[0]).SOPInstanceUID}.dcm"
    wait_shown(qtbot, win, path)
    assert Path(win.session.image.path) == path


def test_open_study_names_what_is_wrong(win, qr_pacs, pacs_config):
    win.messages.last_error = ""
    win.open_study(StudyRequest("No such node", study_uid="1.2.3"))
    assert "no PACS node is called 'No such node'" in win.messages.last_error
    with pytest.raises(RequestError, match="one of the two"):  # checked when made
        StudyRequest("Test PACS", study_uid="1.2.3", accession="X")


def test_cancel_in_the_status_bar_keeps_what_is_shown(win, qtbot, qr_pacs, pacs_config,
                                                       monkeypatch):
    from gradcam_viewer.pacs.store import StudyStore
    from gradcam_viewer.session.retrieval import RetrieveState

    put = StudyStore.put_encoded
    monkeypatch.setattr(StudyStore, "put_encoded",
                        lambda self, ds, data: (__import__("time").sleep(0.1),
                                                put(self, ds, data))[1])
    big = qr_pacs.big
    win.pacs_open.retrieve(qr_pacs.node(method="get"), big.study_uid)
    bar = win.pacs_open.bar
    qtbot.waitUntil(lambda: win.pacs_open.retrieval.received >= 3, timeout=60_000)
    assert bar.isVisible() and bar.cancel.isEnabled() and "of 40" in bar.text.text()
    shown = win.session.files.current
    bar.cancel.click()
    qtbot.waitUntil(lambda: win.pacs_open.last_report is not None, timeout=30_000)
    report = win.pacs_open.last_report
    assert report.cancelled and 3 <= len(report.stored) < 40
    assert win.pacs_open.retrieval.state is RetrieveState.CANCELLED and not bar.isVisible()
    assert win.session.files.current == shown
    assert sorted(win.studies.catalogue.paths()) == sorted(report.stored)
    assert "Retrieve cancelled" in win.status.worker.text()


def test_nodes_dialog_sets_up_dicomweb_and_the_cache(win, qr_pacs, pacs_config, tmp_path):
    from gradcam_viewer.pacs import load_nodes

    win.act["pacs_nodes"].trigger()
    dialog = win.pacs.nodes_dialog
    assert [n.title for n in dialog.nodes] == ["Test PACS"]
    dialog.name.setText("Web")
    dialog.kind.setCurrentIndex(1)
    assert not dialog.use_send.isEnabled() and not dialog.aet.isVisibleTo(dialog)
    dialog.url.setText(qr_pacs.server.dicomweb_url + "/")
    dialog.add_current()
    dialog.keep.setChecked(False)
    dialog.cache_mb.setValue(1024)
    dialog.save()
    nodes = load_nodes()
    assert [(n.kind, n.url, n.send, n.query_retrieve) for n in nodes] == [
        ("dimse", "", True, True), ("dicomweb", qr_pacs.server.dicomweb_url, False, True)]
    assert not win.pacs_open.settings.keep and win.pacs_open.settings.cache_mb == 1024
    win.pacs_open.show_dialog()  # the query dialog offers what was just saved
    first = win.pacs_open.dialog
    win.pacs_open.show_dialog()
    assert win.pacs_open.dialog is first and [n.title for n in first.nodes] == ["Test PACS",
                                                                                "Web"]


def test_the_cache_is_emptied_at_exit_unless_kept(win, qtbot, qr_pacs, pacs_config):
    win.pacs_open.settings.keep = False
    seed = qr_pacs.study("ACC2001")
    win.pacs_open.retrieve(qr_pacs.node(method="get"), seed.study_uid)
    qtbot.waitUntil(lambda: win.pacs_open.last_report is not None, timeout=60_000)
    assert (pacs_config / seed.study_uid).is_dir()
    win.shutdown()
    assert not (pacs_config / seed.study_uid).exists()
