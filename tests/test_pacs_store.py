"""Where retrieved objects land (no network): a study's folder takes only whole objects of
that study, named by a checked SOP Instance UID, readable by the user only; the cache keeps
one folder per study within its size limit, oldest first, and empties on request. Also the
node settings' new fields and the command line's query/retrieve (against Orthanc)."""

import json
import os
import stat
import time
from pathlib import Path

import pydicom
import pytest
from hypothesis import given, strategies as st
from pydicom.dataset import Dataset

from gradcam_viewer.cli import main
from gradcam_viewer.pacs.nodes import NodeError, PacsNode, find_node, load_nodes, save_nodes
from gradcam_viewer.pacs.query import is_uid
from gradcam_viewer.pacs.store import NotStoredError, RetrieveCache, StudyStore

STUDY = "1.2.826.0.1.3680043.8.498.1"


def header(study=STUDY, series="1.2.3.9", sop="1.2.3.10") -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
    return ds


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
@pytest.mark.parametrize("sop", ["../../etc/passwd", "1.2.3/4", "1..2", ".1.2", "1.2.", "",
                                 "1.2.3\x00", "1" * 65, "１.２", "1.2.3.dcm",
                                 "C:\\x", "..", "."])
def test_a_sop_instance_uid_that_is_not_one_is_refused(tmp_path, sop):
    store = StudyStore(tmp_path / "study", STUDY)
    with pytest.raises(NotStoredError, match="not a UID"):
        store.put_encoded(header(sop=sop), b"DICM")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@given(st.text(max_size=70))
def test_only_digits_and_dots_make_a_file_name(text):
    assert is_uid(text) == (0 < len(text) <= 64 and all(c in "0123456789." for c in text)
                            and "" not in text.split("."))


def test_objects_of_another_study_or_series_are_refused(tmp_path):
    store = StudyStore(tmp_path, STUDY, "1.2.3.9")
    with pytest.raises(NotStoredError, match="another study"):
        store.put_encoded(header(study="1.2.3.4"), b"x")
    with pytest.raises(NotStoredError, match="another series"):
        store.put_encoded(header(series="1.2.3.8"), b"x")
    assert store.refused == {"an object of another study than the one asked for": 1,
                             "an object of another series than the one asked for": 1}
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_fails_half_way_leaves_nothing(tmp_path):
    store = StudyStore(tmp_path / "s", STUDY)

    def half(tmp: Path) -> None:
        tmp.write_bytes(b"DICM" * 100)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        store.put(header(), half)
    assert [p.name for p in (tmp_path / "s").iterdir()] == []


def test_folders_and_files_are_the_users_alone(tmp_path):
    cache = RetrieveCache(tmp_path / "cache" / "studies")
    store = cache.store(STUDY)
    stored = store.put_encoded(header(), b"DICM")
    assert stored.path == tmp_path / "cache" / "studies" / STUDY / "1.2.3.10.dcm"
    for folder in (tmp_path / "cache", tmp_path / "cache" / "studies", store.folder):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(stored.path.stat().st_mode) & 0o077 == 0
    with pytest.raises(ValueError):
        cache.study_folder("../x")


def test_the_cache_goes_oldest_first_and_keeps_what_is_read(tmp_path):
    cache = RetrieveCache(tmp_path, limit_mb=1)
    uids = [f"1.2.3.{i}" for i in range(4)]
    for age, uid in enumerate(uids):
        store = cache.store(uid)
        store.put_encoded(header(study=uid), b"\0" * 400_000)
        then = time.time() - 1000 + age * 10
        os.utime(store.folder, (then, then))
    assert cache.size() == 1_600_000
    removed = cache.evict(keep=(uids[0],))  # the oldest is being read: it stays
    assert removed == ["1.2.3.1", "1.2.3.2"]
    assert sorted(p.name for p in cache.studies()) == ["1.2.3.0", "1.2.3.3"]
    assert cache.size() <= 1 << 20
    (tmp_path / "not-a-study").mkdir()
    cache.clear()
    assert cache.studies() == [] and (tmp_path / "not-a-study").is_dir()


# --- node settings -------------------------------------------------------------------------

def test_nodes_of_an_older_version_still_load(tmp_path):
    path = tmp_path / "pacs_nodes.json"
    path.write_text(json.dumps({"nodes": [{"ae_title": "OLD", "host": "h", "port": 104,
                                           "calling_ae_title": "", "name": "Old"}]}))
    (node,) = load_nodes(path)
    assert (node.send, node.query_retrieve, node.retrieve_method, node.kind) == (
        True, False, "auto", "dimse")
    assert node.calling_ae_title == "GRADCAM_VIEWER"


def test_new_fields_round_trip_and_are_checked(tmp_path):
    nodes = [PacsNode("PACS", "pacs", 104, "ME", "Main", send=False, query_retrieve=True,
                      retrieve_method="move", move_port=4006, dimse_timeout=60),
             PacsNode("", "", 0, name="Web", kind="dicomweb", url="https://x/dicom-web",
                      send=False, query_retrieve=True, token_file="/run/token")]
    assert load_nodes(save_nodes(nodes, tmp_path / "n.json")) == nodes
    assert find_node("Web", nodes) is nodes[1] and find_node("PACS@pacs:104", nodes) is nodes[0]
    with pytest.raises(NodeError, match="no PACS node is called 'x'"):
        find_node("x", nodes)
    for bad in (dict(retrieve_method="fast"), dict(move_port=0), dict(kind="hl7"),
                dict(dimse_timeout=0)):
        with pytest.raises(NodeError):
            PacsNode("PACS", "pacs", 104, **bad)
    for url in ("ftp://x", "https://", "https://x/?a=1", "https://u:p@x/"):
        with pytest.raises(NodeError):
            PacsNode("", "", 0, kind="dicomweb", url=url, send=False)
    with pytest.raises(NodeError, match="DIMSE"):
        PacsNode("", "", 0, kind="dicomweb", url="https://x")  # send defaults to on


# --- the command line --------------------------------------------------------------------

def test_query_prints_studies_without_names_unless_asked(qr_pacs, capsys):
    node = f"GCVORTHANC@127.0.0.1:{qr_pacs.server.dicom_port}"
    assert main(["query", node, "--patient-id", "QR-001", "--calling-aet", "GCV_VIEWER",
                 "--json"]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["AccessionNumber"] for r in records] == ["ACC1002", "ACC1001"]
    for r in records:
        assert {"StudyInstanceUID", "StudyDate", "ModalitiesInStudy",
                "NumberOfStudyRelatedInstances"} <= set(r)
        assert "PatientName" not in r and "PatientID" not in r
    assert "Müller" not in out + err and "2 studies found" in err
    assert main(["query", node, "--accession", "ACC1001", "--calling-aet", "GCV_VIEWER",
                 "--json", "--show-identifiers"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (record["PatientName"], record["PatientID"]) == ("Müller^Jürgen", "QR-001")
    assert main(["query", node, "--patient-id", "QR*", "--limit", "1", "--calling-aet",
                 "GCV_VIEWER"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and "note: Only the first 1 studies" in err


def test_query_refusals_exit_with_the_table(qr_pacs, capsys):
    node = f"GCVORTHANC@127.0.0.1:{qr_pacs.server.dicom_port}"
    assert main(["query", node]) == 2  # nothing to match on
    assert "whole PACS is refused" in capsys.readouterr().err
    assert main(["query", node, "--patient-id", "QR-001", "--calling-aet", "STRANGER"]) == 1
    err = capsys.readouterr().err
    assert "AE title STRANGER" in err and "host 127.0.0.1" in err
    assert main(["query", "not a node", "--patient-id", "x"]) == 2


def test_retrieve_writes_what_explain_reads(qr_pacs, tmp_path, capsys):
    seed = qr_pacs.study("ACC1001")
    out = tmp_path / "study"
    assert main(["retrieve", f"GCVORTHANC@127.0.0.1:{qr_pacs.server.dicom_port}",
                 "--study-uid", seed.study_uid, "--out", str(out), "--calling-aet",
                 "GCV_VIEWER", "--method", "move", "--move-port", str(qr_pacs.move_port)]) == 0
    assert "4 objects retrieved, 0 failed" in capsys.readouterr().err
    uids = sorted(str(pydicom.dcmread(f).SOPInstanceUID) for f in seed.files)
    assert sorted(p.stem for p in out.iterdir()) == uids
    assert main(["explain", str(out), "--out", str(tmp_path / "maps"), "--overlays",
                 "none"]) == 0
    rows = (tmp_path / "maps" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + 4


def test_retrieve_failures_exit_1_or_2(qr_pacs, tmp_path, capsys):
    node = f"GCVORTHANC@127.0.0.1:{qr_pacs.server.dicom_port}"
    seed = qr_pacs.study("ACC1001")
    assert main(["retrieve", node, "--study-uid", seed.study_uid, "--out", str(tmp_path / "a"),
                 "--calling-aet", "STRANGER", "--method", "get"]) == 1
    err = capsys.readouterr().err
    assert "0 objects retrieved, 0 failed" in err and "AE title STRANGER" in err
    assert main(["retrieve", node, "--study-uid", "1.2.x", "--out", str(tmp_path / "b")]) == 2


def test_the_log_holds_no_names_ids_or_query_strings(qr_pacs, tmp_path, monkeypatch, capsys):
    """A query by name and ID, a refusal and a retrieve: the log file has counts, never the
    patient's name, ID or what was typed."""
    import logging

    from gradcam_viewer import logs

    monkeypatch.setenv("GRADCAM_VIEWER_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setattr(logs, "_configured", None)
    node = f"GCVORTHANC@127.0.0.1:{qr_pacs.server.dicom_port}"
    seed = qr_pacs.study("ACC1001")
    assert main(["query", node, "--patient-name", "Mül*", "--patient-id", "QR-001",
                 "--calling-aet", "GCV_VIEWER", "--show-identifiers"]) == 0
    assert main(["query", node, "--patient-name", "Mül*", "--calling-aet", "STRANGER"]) == 1
    assert main(["retrieve", node, "--study-uid", seed.study_uid, "--out", str(tmp_path / "s"),
                 "--calling-aet", "GCV_VIEWER"]) == 0
    logging.getLogger("gradcam_viewer").handlers[-1].flush()
    text = (tmp_path / "log" / "gradcam-viewer.log").read_text(encoding="utf-8")
    assert "C-FIND: 2 stud" in text and "C-GET: 4 object(s) retrieved" in text
    for secret in ("Müller", "Mül", "Jürgen", "QR-001", "19700101"):
        assert secret not in text, secret
    assert "Müller" in capsys.readouterr().out  # printed, as asked, to the terminal only
