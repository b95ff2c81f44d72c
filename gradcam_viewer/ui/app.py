"""Start the GUI: the window first, then the model loads in the worker while the user looks.

`--self-test` opens a bundled sample, waits for its explanation, checks it and exits 0, or 1 on
any failure, including an exception raised inside a Qt callback.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gradcam_viewer.launch.handover import Handover
from gradcam_viewer.launch.requests import LaunchRequest, OpenFiles

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from gradcam_viewer.session.results import ExplainResult
    from gradcam_viewer.ui.main_window import MainWindow
    from gradcam_viewer.ui.single_instance import Claimed, InstanceServer

log = logging.getLogger(__name__)


def default_sample() -> Path | None:
    from gradcam_viewer.resources import samples_dir

    folder = samples_dir()
    preferred = folder / "phantom_02_cardiomegaly_effusion.dcm"
    if preferred.is_file():
        return preferred
    found = sorted(folder.glob("*.dcm")) + sorted(folder.glob("*.png"))
    return found[0] if found else None


def run_gui(args: Any, requests: Sequence[LaunchRequest] | None = None,
            claimed: Claimed | None = None) -> int:
    """The window, on the model `args` names, carrying out `requests` (default: open
    `args.files`; none: the bundled samples). `claimed`: this process is the user's viewer and
    listens for later `gradcam-viewer` processes (ui/single_instance.py)."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("gradcam-viewer")
    app.setOrganizationName("gradcam-viewer")
    # Listen at once (a second process retries for only 2 s); what arrives before the window is
    # up waits in `early`.
    early: list[Handover] = []
    server = _listen(claimed, early)

    from gradcam_viewer.resources import icon_path
    from gradcam_viewer.ui import preload
    from gradcam_viewer.ui.launcher import Launcher
    from gradcam_viewer.ui.main_window import MainWindow

    # TensorFlow's import (a thread of its own) overlaps building and showing the window. Not
    # earlier: while the window's modules import (numpy, Pillow, pydicom) the two threads wait
    # on each other's import locks, and the window came 0.6 s later with no earlier heatmap.
    preload.start()

    if icon_path().is_file():
        app.setWindowIcon(QIcon(str(icon_path())))
    errors: list[str] = []
    shown: list[MainWindow] = []  # the window, once there is one
    sys.excepthook = _hook(errors, shown, tell_user=not getattr(args, "self_test", False))
    win = MainWindow()
    shown.append(win)
    win.show()
    if requests is None:
        requests = [OpenFiles(tuple(Path(f) for f in args.files))] if args.files else []
    model, requests = _start_model(args, requests)
    win.load_model(*model)
    if args.self_test:
        return _self_test(app, win, errors)
    launcher = Launcher(win, win.open_study)
    if sys.platform == "darwin":  # files and links opened from the Finder or a browser
        app.installEventFilter(launcher)
    for request in requests:
        launcher.submit(request)
    if not requests:
        open_start_sample(win)
    if server is not None:
        server.received.disconnect(early.append)
        server.received.connect(launcher.receive)
        for handover in early:
            launcher.receive(handover)
    code = app.exec()
    if server is not None:
        server.close()
    win.shutdown()
    return code


def _listen(claimed: Claimed | None, early: list[Handover]) -> InstanceServer | None:
    if claimed is None:
        return None
    from gradcam_viewer.ui.single_instance import InstanceServer

    server = InstanceServer(claimed)
    server.received.connect(early.append)
    server.listen()
    return server


def _hook(errors: list[str], shown: list[MainWindow],
          tell_user: bool) -> Callable[[type[BaseException], BaseException, TracebackType | None],
                                       None]:
    """Where exceptions raised inside Qt callbacks land: the log, `errors`, and (unless
    `tell_user` is false) a message in the window, which keeps working."""

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        log.error("uncaught exception in the GUI:\n%s", text)
        errors.append(f"{kind.__name__}: {value}")
        if tell_user and shown:
            shown[0].messages.error(f"Something went wrong ({kind.__name__}). The details are in "
                                    "the log file; the window keeps working.")

    return hook


def _start_model(args: Any, requests: Sequence[LaunchRequest]
                 ) -> tuple[tuple[str, str, str], list[LaunchRequest]]:
    """The model to load first, (kind, path, CheXNet reference folder): the one a request
    names (taken out of it, so it loads once), else the command line's, else the demo."""
    for i, request in enumerate(requests):
        if isinstance(request, OpenFiles) and request.model is not None:
            model = request.model
            rest = [*requests[:i], replace(request, model=None), *requests[i + 1:]]
            return (model.kind, str(model.path), str(model.reference_images or "")), rest
    if getattr(args, "chexnet_weights", None):
        reference = getattr(args, "reference_images", None) or ""
        return ("chexnet", str(args.chexnet_weights), str(reference)), list(requests)
    if getattr(args, "model", None):
        return ("keras", str(args.model), ""), list(requests)
    return ("demo", "", ""), list(requests)


def _result_problems(app: QApplication, win: MainWindow, result: ExplainResult) -> list[str]:
    """What is wrong with the explanation shown: values out of range, empty heatmaps, or an
    overlay that changes no pixel on screen."""
    import numpy as np

    problems = []
    probs = result.probabilities
    if not (np.all(np.isfinite(probs)) and np.all((probs >= 0) & (probs <= 1))):
        problems.append(f"probabilities out of range: {probs}")
    if not np.isfinite(result.heatmaps).all() or not result.has_evidence.any():
        problems.append("heatmaps are empty or not finite")
    win.controls.opacity.setValue(60)
    app.processEvents()
    shown = win.image_area.view.render_scene()
    display = win.image_area.display
    if display is None or np.array_equal(shown[..., 0], display if display.ndim == 2
                                          else display[..., 0]):
        problems.append("the overlay did not change the displayed pixels")
    return problems


def open_start_sample(win: MainWindow) -> None:
    """No files given: the bundled samples, in the Studies panel and Page Up/Down, showing
    the default sample DICOM."""
    from gradcam_viewer.resources import samples_dir

    sample = default_sample()
    if sample is not None:
        win.open_paths([samples_dir()], first=sample)


def _self_test(app: QApplication, win: MainWindow, errors: list[str]) -> int:
    """Open the DICOM sample, wait for the heatmaps, check them, return 0 or 1."""
    import numpy as np
    from PySide6.QtCore import QEventLoop, QTimer

    sample = default_sample()
    if sample is None:
        print("self-test: FAIL: no bundled sample found", file=sys.stderr)
        return 1
    session, messages = win.session, win.messages
    win.open_file(sample)
    deadline = time.monotonic() + 240
    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: loop.quit() if ((session.result is not None and win.drawn())
                                                  or errors
                                                  or messages.last_error
                                                  or time.monotonic() > deadline) else None)
    timer.start(50)
    loop.exec()
    timer.stop()
    problems = list(errors)
    if messages.last_error:
        problems.append(messages.last_error)
    result, model = session.result, session.model
    if (result is None or model is None) and not problems:
        problems.append("no explanation within the time limit")
    if result is not None:
        problems += _result_problems(app, win, result)
    win.shutdown()
    if problems or result is None or model is None:
        for p in problems:
            print(f"self-test: FAIL: {p}", file=sys.stderr)
        return 1
    top = int(np.argmax(result.probabilities))
    print(f"self-test: OK: {sample.name}: {model.labels[top]} "
          f"p={result.probabilities[top]:.3f}, {len(model.labels)} heatmaps in "
          f"{result.seconds * 1000:.0f} ms")
    return 0
