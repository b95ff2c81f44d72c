"""A private Orthanc for the tests: 127.0.0.1, free ports, a temporary storage folder, no
remote access; stopped at the end. Skips when the Debian package `orthanc` is absent.

For query/retrieve it is configured as a hospital PACS would be: nobody may query, get or move
unless registered under `DicomModalities` (`DicomAlwaysAllowFind/Get/Move` false), and the
viewer's AE title is registered there (`modalities`). `dicomweb=True` loads the DICOMweb plugin
(Debian package `orthanc-dicomweb`) at `/dicom-web/`."""

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

    @property
    def dicomweb_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def upload(self, path: Path) -> dict:
        """POST /instances: seed a DICOM file as a modality's C-STORE would."""
        return self.rest("POST", "/instances", Path(path).read_bytes())

    def lookup(self, uid: str) -> list[dict]:
        """POST /tools/lookup: what Orthanc stores under a UID."""
        return self.rest("POST", "/tools/lookup", uid.encode())


DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def modality(aet: str, port: int, host: str = "127.0.0.1", **allow: bool) -> dict:
    """A `DicomModalities` entry: every DICOM command allowed unless `allow` says otherwise
    (AllowFind=False, ...)."""
    entry = {"AET": aet, "Host": host, "Port": port, "AllowEcho": True, "AllowFind": True,
             "AllowGet": True, "AllowMove": True, "AllowStore": True}
    entry.update(allow)
    return entry


def start_orthanc(folder: Path, modalities: dict[str, dict] | None = None,
                  dicomweb: bool = False, always_allow_move: bool = False) -> Orthanc:
    exe = requirements.tool("Orthanc", "orthanc")
    plugins = []
    if dicomweb:
        plugins.append(str(requirements.file(DICOMWEB_PLUGIN, "orthanc-dicomweb")))
    dicom_port, http_port = free_port(), free_port()
    storage = folder / "storage"
    storage.mkdir(parents=True)
    config = {
        "Name": "gradcam-viewer test", "StorageDirectory": str(storage),
        "IndexDirectory": str(storage), "DicomAet": AET, "DicomPort": dicom_port,
        "HttpPort": http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True, "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": always_allow_move, "DicomCheckModalityHost": False,
        "Plugins": plugins, "DicomModalities": modalities or {}, "HttpServerEnabled": True,
        "DicomServerEnabled": True, "StorageCompression": False,
        "DicomWeb": {"Enable": dicomweb, "Root": "/dicom-web/", "EnableWado": dicomweb},
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
