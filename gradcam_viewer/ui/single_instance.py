"""One running viewer per user (per user and session on Windows): a second `gradcam-viewer`
hands its request to it and exits.

    second process                              running viewer
    claim(): connect to the local socket  --->  InstanceServer: read one JSON line
             (no answer: take the lock and        (launch/handover.py), reply, and emit
             become the viewer; lock taken by     `received` for the window (ui/launcher.py)
             another: retry for up to 2 s)
             <--- {"accepted": true}: exit 0

The socket is a QLocalServer (a Unix socket in the temporary folder, a named pipe on Windows)
that only this user may open (UserAccessOption). Its name holds the user, and the session on
Windows, so another user or a second desktop session runs its own viewer. A QLockFile in the
configuration folder decides who starts: whoever holds it is (or is becoming) the viewer; one
left by a killed viewer is stale (its process is gone) and taken over, and the socket that
viewer left is removed before listening again.

The second process's side imports QtCore and QtNetwork only: no widgets, no window, no
TensorFlow (the viewer's start-up is what a second process must not pay)."""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QSysInfo, QTimer, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from gradcam_viewer.config import config_dir
from gradcam_viewer.launch.handover import (
    MAX_MESSAGE,
    Handover,
    MessageError,
    Reply,
    read_reply,
    read_request,
    write_reply,
    write_request,
)

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0  # the viewer holding the lock may not listen yet (it is starting)
REPLY_SECONDS = 30.0  # a viewer still starting replies once its window is up
IDLE_SECONDS = 5.0  # a connection that sends no whole message is closed


def instance_name(user: str | None = None) -> str:
    """The socket's name: the user's (and on Windows the session's), readable, then a hash
    of the exact user name so that two names that read alike stay apart."""
    user = user if user is not None else _user()
    if sys.platform == "win32":
        user = f"{user}-s{_windows_session()}"
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", user)[:24]
    digest = hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"gradcam-viewer-{readable}-{digest}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): the uid names the user
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "user"


def _windows_session() -> int:
    import ctypes

    session = ctypes.c_ulong(0)
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    if not kernel32.ProcessIdToSessionId(kernel32.GetCurrentProcessId(), ctypes.byref(session)):
        return 0
    return session.value


def lock_path(name: str) -> Path:
    return config_dir() / f"{name}.lock"


@dataclass
class Claimed:
    """This process is the viewer: it holds the lock, and listens once its QApplication exists
    (`InstanceServer`)."""

    name: str
    lock: QLockFile


@dataclass(frozen=True)
class Alone:
    """No viewer answered and none can be become one (the lock's holder does not answer, or the
    lock cannot be written): this process runs a window of its own, without a socket."""

    reason: str


def claim(handover: Handover, name: str | None = None) -> Reply | Claimed | Alone:
    """Hand `handover` to the running viewer (its `Reply`), or become the viewer (`Claimed`),
    or, when neither works, run alone (`Alone`, saying why)."""
    name = name or instance_name()
    try:
        return _claim(name, handover)
    except NoAnswerError as exc:  # a viewer took the message and hangs: better a window than none
        return Alone(str(exc))


def _claim(name: str, handover: Handover) -> Reply | Claimed | Alone:
    reply = _hand_over(name, handover)
    if reply is not None:
        return reply
    path = lock_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return Alone(f"the configuration folder cannot be written ({exc.strerror})")
    lock = QLockFile(str(path))
    lock.setStaleLockTime(0)  # held for the viewer's life; stale only when its process is gone
    if lock.tryLock(0) or (_left_by_this_process_id(lock) and lock.tryLock(0)):
        return Claimed(name, lock)
    if lock.error() != QLockFile.LockError.LockFailedError:
        return Alone(f"the lock file {path} cannot be written ({lock.error().name})")
    deadline = time.monotonic() + RETRY_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)
        reply = _hand_over(name, handover)
        if reply is not None:
            return reply
    return Alone(f"the running viewer holds {path} but did not answer within "
                 f"{RETRY_SECONDS:.0f} s")


def _left_by_this_process_id(lock: QLockFile) -> bool:
    """Whether the lock names this process, which did not take it: a killed viewer had the
    same process id (ids are reused: a container started again, Wine's small Windows ids), so
    QLockFile sees its owner running. Such a lock is removed. (One this process holds is not:
    the holder's open file keeps it, flock on Unix and the share mode on Windows.)"""
    info = lock.getLockInfo()
    if not isinstance(info, tuple) or len(info) != 3:
        return False
    pid, host, _app = info
    # QLockFile writes COMPUTERNAME on Windows ("VM" where QSysInfo says "vm")
    here = {QSysInfo.machineHostName().lower(), os.environ.get("COMPUTERNAME", "").lower()}
    if pid != os.getpid() or str(host).lower() not in here - {""}:
        return False
    log.info("removing a lock left by an earlier process with this process's id")
    return lock.removeStaleLockFile()


class NoAnswerError(Exception):
    """Connected to the viewer, which did not answer (or answered something unreadable)."""


def _hand_over(name: str, handover: Handover) -> Reply | None:
    """The viewer's reply, or None when no viewer listens under `name`."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(500):
        return None
    _allow_foreground()
    socket.write(write_request(handover))
    socket.flush()
    data = b""
    deadline = time.monotonic() + REPLY_SECONDS
    while b"\n" not in data and time.monotonic() < deadline:
        if not socket.bytesAvailable() and not socket.waitForReadyRead(
                max(1, int((deadline - time.monotonic()) * 1000))):
            if socket.state() != QLocalSocket.LocalSocketState.ConnectedState \
                    and not socket.bytesAvailable():
                break
            continue
        data += bytes(socket.readAll().data())
    socket.abort()
    line = data.partition(b"\n")[0]
    if not line:
        raise NoAnswerError(f"the running viewer did not answer within {REPLY_SECONDS:.0f} s")
    try:
        return read_reply(line)
    except MessageError as exc:
        raise NoAnswerError(f"the running viewer answered something unreadable ({exc})") from None


def _allow_foreground() -> None:
    """Windows gives the foreground only to the process the user last used (this one): let the
    viewer take it, so its window comes to the front."""
    if sys.platform == "win32":
        import ctypes

        ctypes.windll.user32.AllowSetForegroundWindow(-1)  # type: ignore[attr-defined]


class InstanceServer(QObject):
    """The running viewer's end: accepts requests from later `gradcam-viewer` processes of the
    same user, replies to each, and emits the valid ones. A message that is not a request of
    this version is logged and answered with a refusal; nothing of it is carried out."""

    received = Signal(object)  # a Handover

    def __init__(self, claimed: Claimed, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name, self._lock = claimed.name, claimed.lock
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        self._open: set[_Connection] = set()

    def listen(self) -> bool:
        """Listen (call once the QApplication exists). We hold the lock, so no other viewer
        listens: a socket under our name is what a killed viewer left, and goes."""
        QLocalServer.removeServer(self.name)
        if self._server.listen(self.name):
            log.info("listening for other gradcam-viewer processes on %s",
                     self._server.fullServerName())
            return True
        log.warning("cannot listen on %s (%s): later gradcam-viewer processes start windows of "
                    "their own", self.name, self._server.errorString())
        return False

    def server_path(self) -> str:
        return self._server.fullServerName()

    def close(self) -> None:
        self._server.close()
        for connection in list(self._open):
            connection.socket.abort()
        self._lock.unlock()

    def _accept(self) -> None:
        while (socket := self._server.nextPendingConnection()) is not None:
            connection = _Connection(socket, self)
            self._open.add(connection)
            socket.disconnected.connect(lambda c=connection: self._closed(c))

    def _closed(self, connection: _Connection) -> None:
        self._open.discard(connection)
        connection.socket.deleteLater()

    def message_from(self, connection: _Connection, line: bytes) -> None:
        try:
            handover = read_request(line)
        except MessageError as exc:
            log.warning("ignored a message on the viewer's socket: %s", exc)
            connection.reply(Reply(False, f"the running viewer refused the message ({exc})"))
            return
        log.info("request from another gradcam-viewer process (%d arguments)",
                 len(handover.argv))
        connection.reply(Reply(True))
        self.received.emit(handover)


class _Connection:
    """One peer: its bytes until the first newline (at most MAX_MESSAGE), one reply, done."""

    def __init__(self, socket: QLocalSocket, server: InstanceServer) -> None:
        self.socket, self._server, self._data, self._done = socket, server, b"", False
        self._timer = QTimer(socket)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._idle)
        self._timer.start(int(IDLE_SECONDS * 1000))
        socket.readyRead.connect(self._read)
        self._read()

    def _read(self) -> None:
        if self._done:
            return
        self._data += bytes(self.socket.readAll().data())
        line, newline, _rest = self._data.partition(b"\n")
        if newline:
            self._done = True
            self._server.message_from(self, line)
        elif len(self._data) > MAX_MESSAGE:
            self._done = True
            log.warning("ignored a message on the viewer's socket: longer than %d bytes",
                        MAX_MESSAGE)
            self.socket.abort()

    def _idle(self) -> None:
        if not self._done:
            log.warning("closed a connection to the viewer's socket that sent no whole message "
                        "within %.0f s", IDLE_SECONDS)
            self._done = True
            self.socket.abort()

    def reply(self, reply: Reply) -> None:
        self._timer.stop()
        self.socket.write(write_reply(reply))
        self.socket.disconnectFromServer()  # after the reply is written
