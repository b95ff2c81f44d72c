"""For the launch tests: a real (small) stand-in for the window's study retrieval, and viewer
processes with their own user name, configuration and log folders."""

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from gradcam_viewer.launch.requests import StudyRequest
from gradcam_viewer.pacs import PacsNode, save_nodes
from gradcam_viewer.resources import samples_dir

NODE = "Main PACS"
SAMPLE = samples_dir() / "phantom_02_cardiomegaly_effusion.dcm"


@dataclass
class CopyingRetrieval:
    """A `StudyOpener` that "retrieves" by writing the bundled sample DICOM, relabelled as the
    study asked for, into `cache/<study>/`, then opens that folder in the window, as the PACS
    retrieval does once its objects have arrived."""

    win: object
    cache: Path
    asked: list[StudyRequest] = field(default_factory=list)

    def __call__(self, study: StudyRequest) -> None:
        self.asked.append(study)
        folder = self.cache / (study.study_uid or f"accession-{len(self.asked)}")
        folder.mkdir(parents=True, exist_ok=True)
        ds = pydicom.dcmread(SAMPLE)
        if study.study_uid:
            ds.StudyInstanceUID = study.study_uid
        else:
            ds.AccessionNumber = study.accession
        ds.save_as(folder / "image.dcm")
        self.win.open_paths([folder])

    def shown(self) -> Path | None:
        image = self.win.session.image
        return Path(image.path).parent if image is not None else None


def configure_node(config: Path, name: str = NODE) -> None:
    """`name` for query/retrieve, and "Send only", a node that is not."""
    save_nodes([PacsNode("ORTHANC", "127.0.0.1", 4242, name=name, query_retrieve=True),
                PacsNode("ARCHIVE", "127.0.0.1", 4243, name="Send only")],
               config / "pacs_nodes.json")


def viewer_env(tmp_path: Path, user: str) -> dict[str, str]:
    """The environment of a viewer process run as `user`: its own socket name, lock, settings
    and log (a real user's viewer on this machine is never reached)."""
    env = dict(os.environ, USER=user, LOGNAME=user, QT_QPA_PLATFORM="offscreen",
               GRADCAM_VIEWER_CONFIG_DIR=str(tmp_path / f"config-{user}"),
               GRADCAM_VIEWER_LOG_DIR=str(tmp_path / f"log-{user}"),
               XDG_CONFIG_HOME=str(tmp_path / f"xdg-{user}"))  # QSettings of the window
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def log_text(env: dict[str, str]) -> str:
    path = Path(env["GRADCAM_VIEWER_LOG_DIR"]) / "gradcam-viewer.log"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def wait_for_log(env: dict[str, str], text: str, process=None, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = log_text(env)
        if text in log:
            return log
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the viewer exited ({process.returncode}) before logging "
                                 f"{text!r}:\n{log[-3000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"{text!r} not in the log within {timeout} s:\n{log_text(env)[-3000:]}")


def viewer_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gradcam_viewer", *args]
