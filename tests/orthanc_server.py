"""A private Orthanc for the tests: 127.0.0.1, free ports, a temporary storage folder, no
remote access; stopped at the end. Skips when the Debian package `orthanc` is absent."""

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

import requirements

AET = "GCVORTHANC"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Orthanc:
    dicom_port: int
    http_port: int
    process: subprocess.Popen

    def rest(self, method: str, path: str, body: bytes | None = None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body,
                                     method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def lookup(self, uid: str) -> list[dict]:
        """POST /tools/lookup: what Orthanc stores under a UID."""
        return self.rest("POST", "/tools/lookup", uid.encode())


def start_orthanc(folder: Path) -> Orthanc:
    exe = requirements.tool("Orthanc", "orthanc")
    dicom_port, http_port = free_port(), free_port()
    storage = folder / "storage"
    storage.mkdir(parents=True)
    config = {
        "Name": "gradcam-viewer test", "StorageDirectory": str(storage),
        "IndexDirectory": str(storage), "DicomAet": AET, "DicomPort": dicom_port,
        "HttpPort": http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True, "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
        "Plugins": [], "DicomModalities": {}, "HttpServerEnabled": True,
        "DicomServerEnabled": True, "StorageCompression": False,
    }
    path = folder / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    log = open(folder / "orthanc.log", "wb")
    process = subprocess.Popen([exe, str(path)], stdout=log, stderr=subprocess.STDOUT)
    server = Orthanc(dicom_port, http_port, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Orthanc stopped at start: {(folder / 'orthanc.log').read_text()[-2000:]}")
        try:
            server.rest("GET", "/system")
            return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    process.kill()
    pytest.fail("Orthanc did not answer within 30 s")


def stop_orthanc(server: Orthanc) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(10)
