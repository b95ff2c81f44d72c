"""Shared test set-up: headless Qt, quiet CPU-only TensorFlow, and the shared data folder."""

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def marks_folder(tmp_path_factory, monkeypatch) -> Path:
    """The viewer's marks go to a folder of the test's own, never the user's data folder."""
    folder = tmp_path_factory.mktemp("marks")
    monkeypatch.setenv("GRADCAM_VIEWER_MARKS", str(folder))
    return folder


@pytest.fixture(autouse=True)
def config_folder(tmp_path_factory, monkeypatch) -> Path:
    """The configuration folder (PACS nodes, the operator name) is the test's own too."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("GRADCAM_VIEWER_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is absent (real radiographs are only beside the checkout)")
    return SHARED


@pytest.fixture(scope="module")
def reference():
    """The engine called directly, outside the GUI and the CLI: what both must show."""
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.imaging import load_image
    from gradcam_viewer.models import load_model_bundle

    bundle = load_model_bundle()
    explainer = Explainer(bundle.model, layer=bundle.target_layer, output=bundle.output)

    def run(path, method="gradcam"):
        return explainer.explain(bundle.prepare(load_image(path)), method=method)

    return bundle, run


@pytest.fixture
def win(qapp, qtbot, tmp_path):
    """A window of its own on the demo model: no test sees what another one left behind."""
    from PySide6.QtCore import QSettings

    from gradcam_viewer.ui.main_window import MainWindow

    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    w.load_model("demo", "")
    qtbot.waitUntil(lambda: w.session.model is not None, timeout=180_000)
    yield w
    w.shutdown()


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A private Orthanc PACS on 127.0.0.1 (tests/orthanc_server.py), stopped at the end."""
    from orthanc_server import start_orthanc, stop_orthanc

    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    stop_orthanc(server)


@pytest.fixture(scope="session")
def qr_pacs(tmp_path_factory):
    """An Orthanc set up for query/retrieve as a hospital would (tests/pacs_studies.py): the
    viewer's AE title registered, seeded studies; with the DICOMweb plugin when installed."""
    from orthanc_server import stop_orthanc
    from pacs_studies import start_qr_pacs

    pacs = start_qr_pacs(tmp_path_factory.mktemp("qr"))
    yield pacs
    stop_orthanc(pacs.server)


@pytest.fixture
def no_network(monkeypatch):
    """Every socket creation fails and is recorded: the test asserts the list stays empty."""
    import socket

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls
