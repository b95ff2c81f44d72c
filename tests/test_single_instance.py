"""One viewer per user, with real processes: a second `gradcam-viewer` hands its file to the
running viewer and exits 0 without starting a window (nor importing TensorFlow); it waits for a
viewer that holds the lock but does not listen yet; a killed viewer's lock and socket do not
stop the next one; another user's viewer is a viewer of its own; and what arrives on the socket
that is not a request is refused and logged, while the viewer keeps working.

Each test runs its viewers under a user name of its own (USER/LOGNAME), with their own
configuration and log folders, so a real viewer on this machine is never reached."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from gradcam_viewer.launch.handover import Handover, read_reply, write_request
from gradcam_viewer.launch.links import make_link
from gradcam_viewer.launch.requests import StudyRequest
from gradcam_viewer.ui import single_instance
from gradcam_viewer.ui.launcher import Launcher
from gradcam_viewer.ui.single_instance import Claimed, InstanceServer, claim, instance_name
from gui_helpers import wait_shown
from launch_helpers import (
    NODE,
    SAMPLE,
    CopyingRetrieval,
    configure_node,
    log_text,
    viewer_command,
    viewer_env,
    wait_for_log,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the tests read the Unix socket")

HEAVY_MODULES = ("tensorflow", "keras", "gradcam_viewer.ui.main_window", "PySide6.QtWidgets",
                 "gradcam_viewer.cam", "gradcam_viewer.ui.worker")


@pytest.fixture
def user(tmp_path, monkeypatch):
    """This test's user name, also for the in-process viewer (getpass reads LOGNAME first)."""
    name = f"gcv-{uuid.uuid4().hex[:8]}"
    env = viewer_env(tmp_path, name)
    for key in ("USER", "LOGNAME", "GRADCAM_VIEWER_CONFIG_DIR"):
        monkeypatch.setenv(key, env[key])
    yield env
    # the socket a killed viewer left behind (the lock is in tmp_path)
    for path in Path(os.environ.get("TMPDIR", "/tmp")).glob(f"gradcam-viewer-{name}-*"):
        path.unlink(missing_ok=True)


@pytest.fixture
def running(win, user, tmp_path):
    """This test process as the running viewer: `win` listening, with a copying retrieval."""
    claimed = claim(Handover((), str(tmp_path)))
    assert isinstance(claimed, Claimed)
    server = InstanceServer(claimed)
    assert server.listen()
    configure_node(Path(user["GRADCAM_VIEWER_CONFIG_DIR"]))
    launcher = Launcher(win, CopyingRetrieval(win, tmp_path / "cache"))
    server.received.connect(launcher.receive)
    received = []
    server.received.connect(received.append)
    yield server, launcher, received
    server.close()


def _second(qtbot, env, *args, cwd):
    """Run a second `gradcam-viewer` while this process's event loop keeps running; its exit
    code, seconds to exit, and the modules it imported (python -X importtime)."""
    trace = Path(cwd) / f"importtime-{uuid.uuid4().hex[:6]}.txt"
    with open(trace, "w") as err:
        start = time.monotonic()
        process = subprocess.Popen([viewer_command()[0], "-X", "importtime",
                                    *viewer_command(*args)[1:]], cwd=cwd, env=env, stderr=err,
                                   stdout=subprocess.DEVNULL)
        qtbot.waitUntil(lambda: process.poll() is not None, timeout=60_000)
        seconds = time.monotonic() - start
    modules = {line.split("|")[-1].strip() for line in trace.read_text().splitlines()
               if line.startswith("import time:")}
    return process.returncode, seconds, modules


def test_a_second_process_hands_its_file_over_and_exits(running, win, user, qtbot, tmp_path):
    server, launcher, received = running
    work = tmp_path / "reader"
    work.mkdir()
    shutil.copy(SAMPLE, work / "scan.dcm")
    code, seconds, modules = _second(qtbot, user, "scan.dcm", cwd=work)  # relative to its cwd
    assert code == 0
    print(f"second process exited after {seconds:.2f} s")
    assert "gradcam_viewer.ui.single_instance" in modules  # it did talk to the viewer
    assert not [m for m in modules if m.startswith(HEAVY_MODULES)]  # and started nothing
    assert received == [Handover(("scan.dcm",), str(work))]
    wait_shown(qtbot, win, work / "scan.dcm")  # the running window opened it, with heatmaps


def test_a_link_from_a_second_process_is_asked_about_then_retrieved(running, win, user, qtbot,
                                                                    tmp_path):
    server, launcher, _ = running
    uid = "1.2.826.0.1.3680043.8.498.77"
    link = make_link(StudyRequest(NODE, study_uid=uid))
    code, _, modules = _second(qtbot, user, link, cwd=tmp_path)
    assert code == 0 and not [m for m in modules if m.startswith(HEAVY_MODULES)]
    qtbot.waitUntil(lambda: launcher.question is not None, timeout=10_000)
    assert NODE in launcher.question.text() and uid in launcher.question.text()
    yes = next(b for b in launcher.question.buttons() if "Retrieve" in b.text())
    yes.click()
    wait_shown(qtbot, win, tmp_path / "cache" / uid / "image.dcm")


def test_the_open_command_is_handed_over(running, win, user, qtbot, tmp_path):
    server, launcher, _ = running
    uid = "1.2.826.0.1.3680043.8.498.78"
    code, _, modules = _second(qtbot, user, "open", "--node", NODE, "--study-uid", uid,
                               cwd=tmp_path)
    assert code == 0 and not [m for m in modules if m.startswith(HEAVY_MODULES)]
    wait_shown(qtbot, win, tmp_path / "cache" / uid / "image.dcm")  # no question for `open`
    assert launcher.open_study.asked == [StudyRequest(NODE, study_uid=uid)]


def test_open_with_a_bad_study_fails_before_anything_starts(user, tmp_path):
    done = subprocess.run(viewer_command("open", "--node", NODE, "--study-uid", "1.2.*"),
                          env=user, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a DICOM UID" in done.stderr
    assert not log_text(user) or "listening" not in log_text(user)


def test_the_second_waits_for_a_viewer_that_holds_the_lock_but_does_not_listen_yet(
        win, user, qtbot, tmp_path):
    """The first process takes the lock, then listens once its QApplication exists: a second
    started in between retries for up to 2 s instead of starting a window of its own."""
    claimed = claim(Handover((), str(tmp_path)))
    assert isinstance(claimed, Claimed)
    server = InstanceServer(claimed)
    received = []
    server.received.connect(received.append)
    shutil.copy(SAMPLE, tmp_path / "late.dcm")
    process = subprocess.Popen(viewer_command(str(tmp_path / "late.dcm")), env=user,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    qtbot.wait(800)  # the second is retrying meanwhile
    assert process.poll() is None
    assert server.listen()
    qtbot.waitUntil(lambda: process.poll() is not None, timeout=30_000)
    server.close()
    assert process.returncode == 0, process.stderr.read()
    assert received == [Handover((str(tmp_path / "late.dcm"),), os.getcwd())]


def _start_viewer(env, *args):
    return subprocess.Popen(viewer_command(*args), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


def test_killed_viewer_then_a_new_start_listens_again_and_other_users_run_their_own(tmp_path):
    first_env = viewer_env(tmp_path, f"gcv-{uuid.uuid4().hex[:8]}")
    name = instance_name(first_env["USER"])
    socket_path = Path(os.environ.get("TMPDIR", "/tmp")) / name
    lock = Path(first_env["GRADCAM_VIEWER_CONFIG_DIR"]) / f"{name}.lock"
    processes = []
    try:
        first = _start_viewer(first_env)
        processes.append(first)
        wait_for_log(first_env, f"listening for other gradcam-viewer processes on {socket_path}",
                     first)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
        assert socket_path.exists() and lock.exists()  # what the killed viewer left

        # the next start, same user: takes the stale lock, removes the socket, listens again
        again_env = dict(first_env, GRADCAM_VIEWER_LOG_DIR=str(tmp_path / "log-again"))
        again = _start_viewer(again_env)
        processes.append(again)
        wait_for_log(again_env, f"listening for other gradcam-viewer processes on {socket_path}",
                     again)
        shutil.copy(SAMPLE, tmp_path / "after-kill.dcm")
        start = time.monotonic()
        handed = subprocess.run(viewer_command("after-kill.dcm"), cwd=tmp_path, env=first_env,
                                capture_output=True, text=True, timeout=120)
        print(f"handed over to the restarted viewer in {time.monotonic() - start:.2f} s")
        assert handed.returncode == 0, handed.stderr
        wait_for_log(again_env, "opening after-kill.dcm", again)

        # another user: another socket name, a viewer of its own (nothing reaches `again`)
        other_env = viewer_env(tmp_path, f"gcv-{uuid.uuid4().hex[:8]}")
        other_socket = Path(os.environ.get("TMPDIR", "/tmp")) / instance_name(other_env["USER"])
        assert other_socket != socket_path
        other = _start_viewer(other_env)
        processes.append(other)
        wait_for_log(other_env, f"listening for other gradcam-viewer processes on {other_socket}",
                     other)
        assert other.poll() is None  # it runs: it did not hand over to `again`
        assert log_text(again_env).count("request from another gradcam-viewer") == 1
    finally:
        for process in processes:
            _stop(process)
        for user_env in (first_env,):
            for path in Path(os.environ.get("TMPDIR", "/tmp")).glob(
                    f"gradcam-viewer-{user_env['USER']}-*"):
                path.unlink(missing_ok=True)
        if "other_env" in locals():
            for path in Path(os.environ.get("TMPDIR", "/tmp")).glob(
                    f"gradcam-viewer-{other_env['USER']}-*"):
                path.unlink(missing_ok=True)


def _send_raw(path: str, data: bytes, results: list, close_after: bool = True):
    """A peer that writes `data` to the viewer's socket (from a thread: the test's event loop
    must keep running for the viewer to answer) and records what comes back."""
    def run():
        with socket.socket(socket.AF_UNIX) as peer:
            peer.settimeout(10)
            peer.connect(path)
            try:
                peer.sendall(data)
                if close_after:
                    peer.shutdown(socket.SHUT_WR)
                answer = b""
                while chunk := peer.recv(4096):
                    answer += chunk
            except OSError as exc:  # the viewer may drop an oversized message mid-write
                answer = repr(exc).encode()
            results.append(answer)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_what_is_not_a_request_is_refused_logged_and_the_viewer_goes_on(running, win, user,
                                                                       qtbot, caplog,
                                                                       monkeypatch):
    server, launcher, received = running
    monkeypatch.setattr(single_instance, "IDLE_SECONDS", 0.5)
    hostile = [
        b"\xff\xfe\x00garbage\n", b"not json\n", b"[1, 2]\n",
        b'{"version": 2, "argv": ["/etc/passwd"], "cwd": "/"}\n',
        b'{"version": 1, "argv": ["x"], "cwd": "/", "exec": "sh"}\n',
        b'{"version": 1, "argv": ["x"], "cwd": "relative"}\n',
        b"[" * 50_000 + b"\n",
        os.urandom(2000).replace(b"\n", b"") + b"\n",
    ]
    results = []
    for data in hostile:
        thread = _send_raw(server.server_path(), data, results)
        qtbot.waitUntil(lambda t=thread: not t.is_alive(), timeout=10_000)
    assert len(results) == len(hostile)
    for answer in results:
        assert not read_reply(answer.rstrip(b"\n")).accepted
    # no newline within 1 MiB: dropped; a silent peer: closed after IDLE_SECONDS
    big, silent = [], []
    thread = _send_raw(server.server_path(), b"x" * (2 << 20), big)
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=20_000)
    thread = _send_raw(server.server_path(), b'{"version": 1', silent, close_after=False)
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10_000)
    assert silent == [b""]
    assert received == [] and win.session.asked[0] == []  # nothing was carried out
    logged = [r.getMessage() for r in caplog.records if "ignored a message" in r.getMessage()
              or "sent no whole message" in r.getMessage()]
    assert len(logged) == len(hostile) + 2
    # and the viewer still takes a real request
    ok = []
    thread = _send_raw(server.server_path(),
                       write_request(Handover((str(SAMPLE),), "/")), ok)
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10_000)
    assert read_reply(ok[0].rstrip(b"\n")).accepted
    wait_shown(qtbot, win, SAMPLE)


@pytest.fixture
def running_on_pacs(win, user, tmp_path, qr_pacs, monkeypatch):
    """This process as the running viewer, retrieving from a real Orthanc (tests/pacs_studies.py:
    the viewer's AE title registered there, studies seeded) through the window's own
    `open_study`, as the installed program does."""
    from gradcam_viewer.pacs import save_nodes

    monkeypatch.setenv("GRADCAM_VIEWER_CACHE_DIR", str(tmp_path / "cache"))
    save_nodes([qr_pacs.node(method="get")],
               Path(user["GRADCAM_VIEWER_CONFIG_DIR"]) / "pacs_nodes.json")
    claimed = claim(Handover((), str(tmp_path)))
    assert isinstance(claimed, Claimed)
    server = InstanceServer(claimed)
    assert server.listen()
    launcher = Launcher(win, win.open_study)
    server.received.connect(launcher.receive)
    yield launcher
    server.close()


def _shows_seeded(win, study, cache: Path) -> bool:
    """The window shows, with its heatmap, an object of `study` retrieved into the cache, with
    the pixels and UIDs of the file seeded into the PACS."""
    import numpy as np
    import pydicom

    from gui_helpers import shows

    image = win.session.image
    if image is None or Path(image.path).parent != cache / study.study_uid:
        return False
    if not (shows(win, image.path) and win.drawn()):
        return False
    shown = pydicom.dcmread(image.path)
    seeded = {pydicom.dcmread(f).SOPInstanceUID: f for f in study.files}
    original = pydicom.dcmread(seeded[shown.SOPInstanceUID])
    assert shown.StudyInstanceUID == study.study_uid
    assert np.array_equal(shown.pixel_array, original.pixel_array)
    return True


def test_a_worklist_opens_a_study_from_orthanc_in_the_running_viewer(running_on_pacs, win,
                                                                    user, qtbot, qr_pacs,
                                                                    tmp_path):
    """End to end: `gradcam-viewer open` by accession and patient ID (looked up by C-FIND, then
    C-GET), and a gradcam-viewer:// link by Study Instance UID after the user's yes."""
    launcher, cache = running_on_pacs, tmp_path / "cache"
    by_accession = qr_pacs.study("ACC2001")
    code, _, modules = _second(qtbot, user, "open", "--node", "Test PACS", "--accession",
                               "ACC2001", "--patient-id", by_accession.patient_id, cwd=tmp_path)
    assert code == 0 and not [m for m in modules if m.startswith(HEAVY_MODULES)]
    assert launcher.question is None  # the command asks nothing
    qtbot.waitUntil(lambda: _shows_seeded(win, by_accession, cache), timeout=120_000)

    by_link = qr_pacs.study("ACC1001")
    link = make_link(StudyRequest("Test PACS", study_uid=by_link.study_uid))
    code, _, _ = _second(qtbot, user, link, cwd=tmp_path)
    assert code == 0
    qtbot.waitUntil(lambda: launcher.question is not None, timeout=10_000)
    assert "'Test PACS'" in launcher.question.text()
    assert by_link.study_uid in launcher.question.text()
    assert not (cache / by_link.study_uid).exists()  # nothing retrieved before the yes
    next(b for b in launcher.question.buttons() if "Retrieve" in b.text()).click()
    qtbot.waitUntil(lambda: _shows_seeded(win, by_link, cache), timeout=120_000)


def test_the_started_viewer_retrieves_what_a_worklist_asks(tmp_path, qr_pacs):
    """The program as installed (no test wiring): a running `gradcam-viewer`, then `open` from
    a worklist; the study arrives in the viewer's cache from Orthanc."""
    import pydicom

    from gradcam_viewer.pacs import save_nodes

    env = viewer_env(tmp_path, f"gcv-{uuid.uuid4().hex[:8]}")
    env["GRADCAM_VIEWER_CACHE_DIR"] = str(tmp_path / "cache")
    save_nodes([qr_pacs.node(method="get")],
               Path(env["GRADCAM_VIEWER_CONFIG_DIR"]) / "pacs_nodes.json")
    study = qr_pacs.study("ACC2001")
    viewer = _start_viewer(env)
    try:
        wait_for_log(env, "listening for other gradcam-viewer processes", viewer)
        done = subprocess.run(viewer_command("open", "--node", "Test PACS", "--accession",
                                             "ACC2001", "--patient-id", study.patient_id),
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        wait_for_log(env, "opening a study from a PACS node: node 'Test PACS', study by "
                          "accession number", viewer)
        folder = tmp_path / "cache" / study.study_uid
        seeded = sorted(pydicom.dcmread(f).SOPInstanceUID for f in study.files)
        deadline = time.monotonic() + 120
        while sorted(p.stem for p in folder.glob("*.dcm")) != seeded:
            assert time.monotonic() < deadline, list(folder.glob("*"))
            time.sleep(0.1)
        assert "ACC2001" not in log_text(env) and study.patient_id not in log_text(env)
    finally:
        _stop(viewer)
        for path in Path(os.environ.get("TMPDIR", "/tmp")).glob(f"gradcam-viewer-{env['USER']}-*"):
            path.unlink(missing_ok=True)


def test_a_lock_left_under_this_process_id_is_taken_over(user, tmp_path):
    """Process ids are reused (a container started again; Wine's small Windows ids, where this
    was seen): a killed viewer's lock may name the id of the process starting now, and QLockFile
    then takes its owner for running. Such a lock is taken over, not waited on for 2 s and then
    left (which would start a viewer without its socket)."""
    from PySide6.QtCore import QLockFile

    from gradcam_viewer.ui.single_instance import Alone, lock_path

    elsewhere = QLockFile(str(tmp_path / "model.lock"))
    assert elsewhere.tryLock(0)
    left = (tmp_path / "model.lock").read_bytes()  # this process's id, name, host and boot
    elsewhere.unlock()
    path = lock_path(instance_name())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(left)
    claimed = claim(Handover((), str(tmp_path)))
    assert isinstance(claimed, Claimed), claimed
    server = InstanceServer(claimed)
    try:
        # held by this process now: a second claim (no one listening) must not take it
        again = claim(Handover((), str(tmp_path)))
        assert isinstance(again, Alone) and "did not answer within 2 s" in again.reason
        assert claimed.lock.isLocked()
    finally:
        server.close()
