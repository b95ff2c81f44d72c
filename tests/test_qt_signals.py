"""The Qt binding itself: emitting signals must not corrupt Python's reference counts.

PySide6 6.12.0 dropped a reference to True on every `emit()`; a long session (the soak, or a
day of reading) then aborts the process ("deallocating True or False"). The count runs in a
child process: on a binding with the bug the child itself may abort, which fails the test
instead of taking the test run down."""

import os
import subprocess
import sys

CHILD = r"""
import sys
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Sender(QObject):
    plain = Signal()
    carrying = Signal(object, object)

app = QCoreApplication([])
sender = Sender()
got = []
sender.plain.connect(lambda: got.append(1))
sender.carrying.connect(lambda a, b: got.append(2))
before = [sys.getrefcount(v) for v in (True, False, None)]
for _ in range(200):
    sender.plain.emit()
    sender.carrying.emit(None, "x")
after = [sys.getrefcount(v) for v in (True, False, None)]
print(len(got), *(b - a for a, b in zip(before, after)))
"""


def test_emitting_signals_keeps_reference_counts():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         timeout=120, env={**os.environ,
                                           "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr[-1000:]
    delivered, *changes = (int(v) for v in out.stdout.split())
    assert delivered == 400
    assert all(abs(change) < 50 for change in changes), changes  # 6.12.0: True -400
