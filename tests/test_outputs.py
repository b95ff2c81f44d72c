"""Batch outputs say which image they belong to, on a generated CD-like tree: the
same file names in every series folder, DICOM without extension beside PNG, a Unicode name, a
multi-frame file and two inputs that differ only by their suffix."""

import csv
import json
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from dicom_factory import make_dataset, write
from gradcam_viewer.cli import main
from gradcam_viewer.demo.phantoms import make_phantoms
from gradcam_viewer.outputs.layout import MAX_NAME_BYTES, common_root, plan_outputs, safe_component

UIDS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]
LABEL = "Nodule"
SERIES = ["SERIES1", "SERIES2", "SERIES3", "PNG"]


def _build_tree(root: Path) -> dict[str, Path]:
    """Relative path -> file. Pixels are demo phantoms (each image scores differently)."""
    pix = (make_phantoms(10, seed=16, size=96, with_masks=False).images * 4000).astype(np.uint16)
    study = pydicom.uid.generate_uid()
    files: dict[str, Path] = {}

    def dicom(rel: str, pixels: np.ndarray, series: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        files[rel] = write(path, make_dataset(pixels, bits_stored=12, StudyInstanceUID=study,
                                              SeriesInstanceUID=series))

    def png(rel: str, pixels: np.ndarray) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels // 16).astype(np.uint8)).save(path)
        files[rel] = path

    s1, s2, s3 = (pydicom.uid.generate_uid() for _ in range(3))
    dicom("SERIES1/IM000001", pix[0], s1)
    dicom("SERIES1/IM000002", pix[1], s1)
    dicom("SERIES2/IM000001", pix[2], s2)
    dicom("SERIES2/IM000002", pix[3:6], s2)  # three frames
    dicom("SERIES3/IM000001", pix[6], s3)
    png("SERIES3/IM000001.png", pix[7])  # same stem as the DICOM beside it
    png("PNG/IM000001.png", pix[8])
    png("PNG/Thorax_Müller.png", pix[9])
    return files


def _uids(path: Path) -> dict[str, str]:
    """The oracle: the file's own header, read by pydicom."""
    if path.suffix.lower() == ".png":
        return {}
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)  # some lack the preamble
    return {k: str(ds[k].value) for k in UIDS}


def _explain(tree: Path, out: Path, *extra: str) -> int:
    return main(["explain", *(str(tree / s) for s in SERIES), "--out", str(out),
                 "--overlays", LABEL, *extra])


def _table(out: Path) -> tuple[list[str], list[list[str]]]:
    with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cd")
    return root, _build_tree(root)


@pytest.fixture(scope="module")
def explained(tree, tmp_path_factory):
    root, files = tree
    out = tmp_path_factory.mktemp("explained") / "out"
    assert _explain(root, out) == 0
    return out


def test_every_row_is_one_input_and_every_input_one_row(tree, explained, reference):
    from gradcam_viewer.cli.common import expand_inputs

    bundle, run = reference
    root, files = tree
    header, rows = _table(explained)
    assert header == ["path", "frame", *UIDS, *bundle.labels, "values", "ood_flagged"]
    paths = [r[0] for r in rows]
    assert sorted(paths) == sorted(files) and len(set(paths)) == len(paths) == len(files)
    # in the order of the scan
    scanned = expand_inputs([root / s for s in SERIES])[0]
    assert paths == [p.relative_to(root).as_posix() for p in scanned]
    scores = {}
    for row in rows:
        source = files[row[0]]
        assert row[1] == "1"
        assert dict(zip(UIDS, row[2:5], strict=True)) == (_uids(source) or dict.fromkeys(UIDS, ""))
        probs = np.array([float(v) for v in row[5:-2]])
        np.testing.assert_allclose(probs, run(source).probabilities[0], atol=2e-6)
        scores[row[0]] = probs
    # the check above can tell the images apart: their scores differ
    values = list(scores.values())
    assert min(np.abs(a - b).max() for i, a in enumerate(values) for b in values[i + 1:]) > 1e-3


def test_output_tree_mirrors_the_inputs(tree, explained):
    root, files = tree
    _, rows = _table(explained)
    expected = {"predictions.csv"}
    for rel in files:
        folder, name = rel.rsplit("/", 1)
        base = name if rel == "SERIES3/IM000001.png" else name.removesuffix(".png")
        expected |= {f"{folder}/{base}.json", f"{folder}/{base}_{LABEL}.png"}
        record = json.loads((explained / folder / f"{base}.json").read_text(encoding="utf-8"))
        assert record["path"] == rel and record["frame"] == 1
        row = next(r for r in rows if r[0] == rel)
        assert {k: record[k] for k in UIDS if k in record} == _uids(files[rel])
        assert [f"{record['probabilities'][lab]:.6f}" for lab in record["probabilities"]] \
            == row[5:-2]
        with Image.open(explained / folder / f"{base}_{LABEL}.png") as im:
            assert im.text["Source"] == rel
    written = {p.relative_to(explained).as_posix() for p in explained.rglob("*") if p.is_file()}
    assert written == expected
    assert "PNG/Thorax_Müller.json" in written and not any("_2." in w for w in written)


def test_uids_are_written_by_default_and_none_with_no_ids(tree, explained, tmp_path,
                                                         reference, capsys):
    bundle, _ = reference
    root, files = tree
    uids = {u for p in files.values() for u in _uids(p).values()}
    assert len(uids) == 5 + 1 + 3  # SOP instances, the study, the series

    def found(out: Path) -> set[str]:
        blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
        return {u for u in uids if u.encode() in blob}

    assert found(explained) == uids  # the grep below would see them
    out = tmp_path / "shared"
    assert _explain(root, out, "--no-ids") == 0
    assert found(out) == set()
    assert "look like they hold DICOM UIDs" not in capsys.readouterr().err
    header, rows = _table(out)
    assert header == ["path", "frame", *bundle.labels, "values", "ood_flagged"] and len(rows) == len(files)


def test_frame_is_recorded(tree, tmp_path, reference):
    _, run = reference
    root, files = tree
    multi = files["SERIES2/IM000002"]
    out = tmp_path / "o"
    assert main(["explain", str(multi), "--frame", "3", "--out", str(out), "--overlays",
                 LABEL]) == 0
    _, rows = _table(out)
    assert [r[:2] for r in rows] == [["IM000002", "3"]]
    # frame 3 stored alone in a file of its own is the reference
    ds = pydicom.dcmread(multi)
    third = write(tmp_path / "third.dcm", make_dataset(ds.pixel_array[2], bits_stored=12))
    np.testing.assert_allclose([float(v) for v in rows[0][5:-2]],
                               run(third).probabilities[0], atol=2e-6)
    assert json.loads((out / "IM000002.json").read_text())["frame"] == 3


def test_second_run_refuses_and_resume_appends_only_missing_rows(tree, explained, tmp_path,
                                                                 monkeypatch, capsys):
    from gradcam_viewer.cam import Explainer

    root, files = tree
    out = tmp_path / "out"
    shutil.copytree(explained, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert _explain(root, out) == 1
    err = capsys.readouterr().err
    assert "--force" in err and "--resume" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    # an interrupted run: one image without JSON, one without overlay, rows missing
    header, rows = _table(out)
    (out / "SERIES1" / "IM000002.json").unlink()
    (out / "PNG" / f"IM000001_{LABEL}.png").unlink()
    kept_rows = [r for r in rows if r[0] not in ("SERIES1/IM000002", "SERIES2/IM000001")]
    with open(out / "predictions.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *kept_rows])
    prefix = (out / "predictions.csv").read_bytes()
    calls = []
    original = Explainer.explain
    monkeypatch.setattr(Explainer, "explain",
                        lambda self, batch, *a, **k: calls.append(len(batch))
                        or original(self, batch, *a, **k))  # batches of [N, h, w, c]
    assert _explain(root, out, "--resume") == 0
    assert sum(calls) == 2  # only the two incomplete images were explained again
    assert (out / "predictions.csv").read_bytes().startswith(prefix)
    header2, rows2 = _table(out)
    assert header2 == header
    assert rows2[:len(kept_rows)] == kept_rows
    missing = {"SERIES1/IM000002", "SERIES2/IM000001"}  # appended in the order of the scan
    assert [r[0] for r in rows2[len(kept_rows):]] == [r[0] for r in rows if r[0] in missing]
    assert sorted(map(tuple, rows2)) == sorted(map(tuple, rows))
    untouched = out / "SERIES2" / "IM000001.json"
    assert untouched.read_bytes() == before[untouched]

    assert _explain(root, out, "--resume", "--no-ids") == 2  # other columns: refused
    assert "other columns" in capsys.readouterr().err


# --- names --------------------------------------------------------------------------------

# Microsoft's "Naming Files, Paths, and Namespaces"
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{d}{n}" for d in ("COM", "LPT")
                                                 for n in "0123456789¹²³")}


def test_plain_unicode_names_are_kept():
    for name in ("Thorax_Müller", "Лёгкие", "胸部X線", "Ærø-Ölçü 2", "IM000001", "1.2.840.10008"):
        assert safe_component(name) == name
    for name, safe in (("CON", "CON_"), ("nul.png", "nul_.png"), ("a/b\\c", "a_b_c"),
                       ("..", "__"), ("x. ", "x__"), ("tab\there", "tab_here")):
        assert safe_component(name) == safe


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_any_name_becomes_one_the_file_systems_accept(name):
    safe = safe_component(name)
    assert safe and safe not in (".", "..")
    assert not any(c in '/\\<>:"|?*' or unicodedata.category(c) in ("Cc", "Cs") for c in safe)
    assert not safe.endswith((".", " "))
    assert safe.split(".")[0].rstrip(" ").upper() not in WINDOWS_DEVICES
    assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    if (all(unicodedata.category(c)[0] in "LN" for c in name) and len(name.encode()) < 100
            and name.upper() not in WINDOWS_DEVICES):
        assert safe == (name or "_")


segment = st.sampled_from(["IM000001", "im000001", "IM000001.png", "IM000001.dcm", "CON",
                           "a:b", "a_b", "Müller", "Mu\u0308ller", ".", "x" * 200, "y."])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(segment, min_size=1, max_size=3), min_size=1, max_size=12))
def test_distinct_inputs_never_share_an_output(paths):
    rels = list(dict.fromkeys("/".join(p) for p in paths))
    root = Path("/cd")
    inputs = [root / r for r in rels if "/./" not in f"/{r}/"]
    plan = plan_outputs(inputs, root, Path("/out"), [LABEL, "Mass"])
    assert [p.source for p in plan] == inputs
    names = [unicodedata.normalize("NFC", str(n)).casefold() for item in plan
             for n in (item.json_path, item.overlay_path(LABEL), item.overlay_path("Mass"))]
    assert len(names) == len(set(names))
    for item in plan:
        assert item.json_path.is_relative_to("/out") and item.rel == os.path.relpath(
            item.source, root)


def test_common_root(tree):
    root, files = tree
    a, b = files["SERIES1/IM000001"], files["SERIES2/IM000001"]
    assert common_root([a, b]) == root and common_root([a]) == a.parent
    assert common_root([root / "SERIES1", root / "PNG"]) == root


def test_a_file_given_twice_or_through_a_link_is_explained_once(tree, tmp_path, capsys):
    """The scanner keeps each file once (by inode); `explain` says nothing about repeats:
    nothing is lost, the image has its one set of outputs at its first place."""
    root, files = tree
    a = files["PNG/IM000001.png"]
    link = tmp_path / "link.png"
    link.symlink_to(a)
    out = tmp_path / "o"
    assert main(["explain", str(a), str(link), str(a), str(a.parent), "--out", str(out),
                 "--overlays", "none"]) == 0
    err = capsys.readouterr().err
    assert "note:" not in err and "error:" not in err
    from gradcam_viewer.imaging import scan

    _, rows = _table(out)
    names = [r[0].rsplit("/", 1)[-1] for r in rows]
    assert sorted(names) == sorted(p.name for p in scan([a.parent]))  # each once, no link.png


# --- the window writes the same record ------------------------------------------------------

@pytest.fixture
def fresh_win(qapp, tmp_path):
    from PySide6.QtCore import QSettings

    from gradcam_viewer.ui.main_window import MainWindow
    from gui_helpers import wait_until

    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w.show()
    w.load_model("demo", "")
    wait_until(lambda: w.session.model is not None, 180)
    yield w
    w.shutdown()
    w.close()


def test_gui_export_equals_the_command(tree, explained, fresh_win, tmp_path, monkeypatch):
    from gradcam_viewer.ui import exporting
    from gui_helpers import wait_result, wait_until

    root, files = tree
    header, rows = _table(explained)
    by_path = {r[0]: r for r in rows}
    fresh_win.open_paths([root / s for s in SERIES])  # scanned in the background
    wait_until(lambda: not fresh_win.studies.scanning and fresh_win.session.files.current is not None, 60)
    assert sorted(fresh_win.session.files.paths) == sorted(files.values())
    for i, path in enumerate(fresh_win.session.files.paths):
        fresh_win.open_file(path)
        wait_result(fresh_win, path)
        rel = path.relative_to(root).as_posix()
        gui_csv = fresh_win.exports.predictions(tmp_path / f"{i}.csv", "csv")
        with open(gui_csv, newline="", encoding="utf-8") as f:
            gui_header, gui_row = list(csv.reader(f))
        assert gui_header == header and gui_row == by_path[rel]
        gui_json = fresh_win.exports.predictions(tmp_path / f"{i}.json", "json")
        cli_json = next(p for p in explained.rglob("*.json")
                        if json.loads(p.read_text(encoding="utf-8"))["path"] == rel)
        assert json.loads(gui_json.read_text(encoding="utf-8")) == \
            json.loads(cli_json.read_text(encoding="utf-8"))

    # File > "Leave DICOM UIDs out of exports", through the menu's own dialog path
    dicom = files["SERIES2/IM000001"]
    fresh_win.open_file(dicom)
    wait_result(fresh_win, dicom)
    target = tmp_path / "shared.csv"
    monkeypatch.setattr(exporting.QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(target), ""))
    fresh_win.act["no_ids"].setChecked(True)
    fresh_win.act["export_csv"].trigger()
    with open(target, newline="", encoding="utf-8") as f:
        shared_header, shared_row = list(csv.reader(f))
    assert shared_header == ["path", "frame", *fresh_win.session.model.labels, "values",
                             "ood_flagged"]
    assert shared_row == [by_path["SERIES2/IM000001"][0], "1", *by_path["SERIES2/IM000001"][5:]]
    assert not any(u.encode() in target.read_bytes() for u in _uids(dicom).values())


def test_an_error_names_the_input_by_its_path(tmp_path, capsys):
    from gradcam_viewer.resources import samples_dir

    good = tmp_path / "cd" / "A" / "IM000001"
    bad = tmp_path / "cd" / "B" / "IM000001"
    for p in (good, bad):
        p.parent.mkdir(parents=True)
    data = (samples_dir() / "phantom_03_nodule.png").read_bytes()
    good.write_bytes(data)
    bad.write_bytes(data[:400])
    assert main(["explain", str(good), str(bad), "--out", str(tmp_path / "o"), "--overlays",
                 LABEL]) == 1
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "'B/IM000001'" in errors[0]
    _, rows = _table(tmp_path / "o")
    assert [r[0] for r in rows] == ["A/IM000001"]


def test_a_path_through_a_symbolic_link_is_still_relative(tmp_path):
    from gradcam_viewer.outputs.layout import relative_posix

    (tmp_path / "real" / "S1").mkdir(parents=True)
    (tmp_path / "real" / "S1" / "IM000001").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    root = common_root([tmp_path / "link"])
    assert relative_posix(tmp_path / "real" / "S1" / "IM000001", root) == "S1/IM000001"
    assert relative_posix(tmp_path / "link" / "S1" / "IM000001", root) == "S1/IM000001"


def test_real_dicoms_one_row_or_one_error_each(shared_data, tmp_path, capsys):
    """Inputs not designed here: the shared real DICOMs, in two folders."""
    folders = [shared_data / "cxr-dicom", shared_data / "cxr-dicom" / "other"]
    inputs = {p.relative_to(folders[0]).as_posix(): p for f in folders for p in f.iterdir()
              if p.is_file()}
    out = tmp_path / "o"
    main(["explain", *map(str, folders), "--out", str(out), "--overlays", LABEL])
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    _, rows = _table(out)
    for rel, path in inputs.items():
        named = [e for e in errors if f"'{rel}'" in e]
        mine = [r for r in rows if r[0] == rel]
        assert len(mine) + len(named) == 1, rel
        if mine:
            assert dict(zip(UIDS, mine[0][2:5], strict=True)) == _uids(path)
    assert len(rows) >= 8 and len({r[0] for r in rows}) == len(rows)

    shared = tmp_path / "shared"
    small = sorted(folders[0].glob("SIIM_*.dcm")) + [folders[0] / "highdicom_dx_image.dcm"]
    assert main(["explain", *map(str, small), "--out", str(shared), "--overlays", LABEL,
                 "--no-ids"]) == 0
    assert "look like they hold DICOM UIDs" in capsys.readouterr().err  # SIIM_<SOP UID>.dcm
    blob = b"".join(p.read_bytes() for p in shared.rglob("*") if p.is_file())
    uids = {u for p in small for u in _uids(p).values()}
    assert len(uids) == 6
    for uid in uids:
        if not any(uid in rel for rel in inputs):
            assert uid.encode() not in blob


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_resume_after_any_interruption_gives_each_input_once(tree, explained, data, tmp_path):
    """Whatever subset of outputs and rows an interrupted run left, --resume ends with one row
    per input: the rows that were there first, unchanged, then the missing ones in scan order,
    and only the images with missing files explained again."""
    from gradcam_viewer.cam import Explainer

    root, files = tree
    header, rows = _table(explained)
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "out"
    shutil.copytree(explained, out)
    outputs = sorted(p for p in out.rglob("*") if p.suffix in (".json", ".png"))
    lost = data.draw(st.sets(st.sampled_from(outputs)), label="deleted outputs")
    kept = data.draw(st.lists(st.sampled_from(rows), unique_by=tuple), label="rows left")
    for p in lost:
        p.unlink()
    if kept or data.draw(st.booleans(), label="csv left"):
        with open(out / "predictions.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([header, *kept])
    else:
        (out / "predictions.csv").unlink()
    calls = []
    original = Explainer.explain
    Explainer.explain = (lambda self, batch, *a, **k: calls.append(len(batch))
                         or original(self, batch, *a, **k))  # batches of [N, h, w, c]
    try:
        assert _explain(root, out, "--resume") == 0
    finally:
        Explainer.explain = original
    _, after = _table(out)
    assert after[:len(kept)] == kept
    assert sorted(map(tuple, after)) == sorted(map(tuple, rows))
    order = [r[0] for r in rows]
    added = [r[0] for r in after[len(kept):]]
    assert added == sorted(added, key=order.index)
    incomplete = {p.relative_to(out).parent / p.name.split("_" + LABEL)[0].removesuffix(".json")
                  for p in lost}
    assert sum(calls) == len(incomplete)
