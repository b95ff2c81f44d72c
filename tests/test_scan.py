"""The scanner: folders, exports and DICOMDIR media written by pydicom, with the planned order
(computed from the plan, not from the scanner) and pydicom's own reading as oracles."""

import os
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from dicom_factory import make_dataset, write
from gradcam_viewer.imaging import (
    ImageLoadError,
    load_image,
    scan,
    scan_media,
    scanner as scan_module,
)
from gradcam_viewer.imaging.studies import Catalogue, DicomInfo, ImageRef, natural_key
from media_factory import lower_case_copy, write_fileset, write_uid_export


def sop_uids(paths):
    return [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    dicomdir, order = write_fileset(root / "CD")
    return dicomdir, order


def test_fileset_is_read_in_study_series_instance_order(media):
    dicomdir, order = media
    syntaxes = {pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID
                for p in dicomdir.parent.rglob("IM*")}
    assert len(syntaxes) == 4  # the medium really mixes transfer syntaxes
    for given_path in (dicomdir, dicomdir.parent):
        result = scan_media([given_path])
        assert result.warnings == [] and result.skipped == 0
        assert sop_uids(result.images) == [p.sop_uid for p in order]
    cat = scan_media([dicomdir]).catalogue
    assert [len(p.studies) for p in cat.patients] == [1, 2]
    assert len(cat.all_series()) == 5
    assert [p.patient_id for p in cat.patients] == ["PID-B", "PID-A"]  # earliest study first


def test_a_file_named_twice_is_listed_once(media):
    dicomdir, order = media
    one = sorted(dicomdir.parent.rglob("IM*"))[0]
    for inputs in ([one, dicomdir], [dicomdir, one], [dicomdir.parent, dicomdir, one]):
        found = scan(inputs)
        assert len(found) == len(set(found)) == len(order), inputs


def test_lower_case_media(media, tmp_path):
    dicomdir, order = media
    copy = lower_case_copy(dicomdir.parent, tmp_path / "cdrom")
    assert (copy / "dicomdir").is_file() and not (copy / "DICOMDIR").exists()
    for given_path in (copy, copy / "dicomdir"):
        result = scan_media([given_path])
        assert result.warnings == []
        assert sop_uids(result.images) == [p.sop_uid for p in order]
        # the names come from the DICOMDIR, not from a folder walk: the record order is used
        assert all(p.is_relative_to(copy) and p.exists() for p in result.images)


def test_lower_case_media_is_read_through_the_dicomdir(media, tmp_path, monkeypatch):
    """Only the DICOMDIR knows the order when headers are not read: prove it is used."""
    dicomdir, order = media
    copy = lower_case_copy(dicomdir.parent, tmp_path / "cdrom")
    monkeypatch.setattr(scan_module, "_header", lambda *a, **k: pytest.fail("header read"))
    assert sop_uids(scan([copy])) == [p.sop_uid for p in order]


def test_missing_referenced_file_is_a_warning(media, tmp_path):
    dicomdir, order = media
    copy = tmp_path / "cd"
    shutil.copytree(dicomdir.parent, copy)
    victim = next(p for p in sorted(copy.rglob("IM*"))
                  if str(pydicom.dcmread(p).SOPInstanceUID) == order[4].sop_uid)
    victim.unlink()
    result = scan_media([copy])
    assert len(result.warnings) == 1 and "missing" in result.warnings[0]
    assert str(victim.relative_to(copy)) in result.warnings[0]
    assert sop_uids(result.images) == [p.sop_uid for p in order if p is not order[4]]


def test_a_medium_reached_through_a_symlink_keeps_the_given_path(media, tmp_path):
    """/media/cdrom -> /run/media/...: the DICOMDIR's images are named under the path the
    user gave, as the folder walk names them (they once came back resolved, so an image
    opened on its own was listed twice and output paths left the input folder)."""
    dicomdir, order = media
    link = tmp_path / "cdrom"
    link.symlink_to(dicomdir.parent, target_is_directory=True)
    for named in (link, link / "DICOMDIR"):
        result = scan_media([named])
        assert result.warnings == [] and sop_uids(result.images) == [p.sop_uid for p in order]
        assert all(p.is_relative_to(link) and p.is_file() for p in result.images), named


def test_references_outside_the_medium_are_refused(media, tmp_path):
    dicomdir, order = media
    copy = tmp_path / "cd"
    shutil.copytree(dicomdir.parent, copy)
    secret = tmp_path / "secret.dcm"
    write(secret, make_dataset(np.zeros((4, 4), np.uint16)))
    # 1. a file ID with '..' (same byte length, so the DICOMDIR offsets stay valid)
    raw = (copy / "DICOMDIR").read_bytes()
    original = b"PT000000\\ST000000\\SE000000\\IM000000"
    assert raw.count(original) == 1
    (copy / "DICOMDIR").write_bytes(raw.replace(original, b"..\\" * 9 + b"SECRET00"))
    # 2. a symlink on the medium that points outside it
    link = next(p for p in sorted(copy.rglob("IM000001")))
    link.unlink()
    link.symlink_to(secret)
    result = scan_media([copy / "DICOMDIR"])
    outside = [w for w in result.warnings if "outside" in w]
    assert len(outside) == 2, result.warnings
    assert secret not in result.images and not any(p.is_symlink() for p in result.images)
    assert len(result.images) == len(order) - 2


def test_uid_named_export_with_clutter(tmp_path):
    root, order = write_uid_export(tmp_path / "export")
    assert any(p.name.startswith("1.2.826") or p.name.count(".") > 3
               for p in root.rglob("*") if p.is_file())
    result = scan_media([root])
    assert sop_uids(result.images) == [p.sop_uid for p in order]
    # CSV, README, UID-named text, empty file and the DICOM report; the hidden copy unseen
    assert result.skipped == 5 and result.warnings == []
    assert not any(".thumbs" in p.parts for p in result.images)


def test_cd_layout_without_dicomdir_and_content_not_names(tmp_path):
    """DICOM/ST000000/SE000000/IM000001 (no extension), a PNG named .txt, text named .png."""
    folder = tmp_path / "DICOM" / "ST000000" / "SE000000"
    folder.mkdir(parents=True)
    for i in (10, 2, 1):
        ds = make_dataset(np.full((4, 4), i, np.uint16), StudyInstanceUID="1.2.3",
                          SeriesInstanceUID="1.2.3.4", InstanceNumber=i)
        write(folder / f"IM{i:06d}", ds)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "chest.txt", format="PNG")
    (tmp_path / "notes.png").write_text("not a picture")
    found = scan([tmp_path])
    assert [p.name for p in found] == ["IM000001", "IM000002", "IM000010", "chest.txt"]
    named = scan_media([tmp_path / "notes.png"])  # named explicitly: rejected, not skipped
    assert named.images == [] and named.rejected == [tmp_path / "notes.png"]


def test_a_dicomdir_under_another_name_is_skipped_not_listed(tmp_path):
    """pydicom's own DICOMDIR, renamed: no Rows/Columns, so not an image (found in a folder:
    skipped; named explicitly: rejected, so the loader says why)."""
    from pydicom.data import get_testdata_file

    shutil.copy(get_testdata_file("DICOMDIR"), tmp_path / "INDEX")
    result = scan_media([tmp_path])
    assert result.images == [] and result.skipped == 1
    named = scan_media([tmp_path / "INDEX"])
    assert named.images == [] and named.rejected == [tmp_path / "INDEX"]


def test_preamble_less_dicom_is_found(tmp_path):
    ds = make_dataset(np.arange(16, dtype=np.uint16).reshape(4, 4), StudyInstanceUID="1.2.3",
                      SeriesInstanceUID="1.2.3.4")
    del ds.file_meta
    ds.save_as(tmp_path / "bare", implicit_vr=True, little_endian=True)
    assert (tmp_path / "bare").read_bytes()[128:132] != b"DICM"
    assert scan([tmp_path]) == [tmp_path / "bare"]
    assert load_image(tmp_path / "bare").size == (4, 4)


def test_symlink_loops_hidden_entries_and_depth(tmp_path):
    png = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png)
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / ".hidden").mkdir()
    shutil.copy(png, tmp_path / ".hidden" / "b.png")
    shutil.copy(png, tmp_path / ".c.png")
    assert scan([tmp_path]) == [png]
    deep = tmp_path / "deep"
    folder = deep
    for i in range(scan_module.MAX_DEPTH + 2):
        folder = folder / f"d{i}"
    folder.mkdir(parents=True)
    shutil.copy(png, folder / "too_deep.png")
    shutil.copy(png, deep / "d0" / "shallow.png")
    result = scan_media([deep])
    assert [p.name for p in result.images] == ["shallow.png"]
    assert result.warnings == [] and any("deeper" in n for n in result.notices)


def test_an_unusable_dicomdir_named_explicitly_is_replaced_by_its_folder(tmp_path):
    """Its notice says "the folder is searched instead": it must be, and it is no failure."""
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 200)
    result = scan_media([tmp_path / "DICOMDIR"])
    assert result.images == [tmp_path / "a.png"] and result.warnings == []
    assert len(result.notices) == 1 and "searched instead" in result.notices[0]


def test_a_folder_whose_images_were_named_already_is_not_called_empty(media, tmp_path):
    """`explain a.png folder/` (a.png inside folder/) or a DICOMDIR and its folder: the folder
    adds nothing new, yet it holds images, so no "holds no image files" warning."""
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    result = scan_media([tmp_path / "a.png", tmp_path])
    assert result.images == [tmp_path / "a.png"] and result.warnings == []
    dicomdir, order = media
    result = scan_media([dicomdir, dicomdir.parent])
    assert len(result.images) == len(order) and result.warnings == []


def test_a_dicomdir_given_with_its_folder_is_read_once(media, tmp_path, monkeypatch):
    """`explain CD/DICOMDIR CD/` (either order): one parse of the DICOMDIR, so one warning
    per missing file and each image once."""
    dicomdir, order = media
    copy = tmp_path / "cd"
    shutil.copytree(dicomdir.parent, copy)
    sorted(copy.rglob("IM*"))[0].unlink()
    real = pydicom.dcmread
    reads = []

    def counting(path, *args, **kwargs):
        reads.append(Path(path).name if isinstance(path, (str, os.PathLike)) else "")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    for inputs in ([copy / "DICOMDIR", copy], [copy, copy / "DICOMDIR"]):
        reads.clear()
        result = scan_media(inputs)
        assert reads.count("DICOMDIR") == 1, inputs
        assert len(result.warnings) == 1 and "missing" in result.warnings[0], inputs
        assert len(result.images) == len(set(result.images)) == len(order) - 1


def test_a_single_path_is_accepted(media):
    dicomdir, order = media
    assert scan(dicomdir.parent) == scan(str(dicomdir.parent)) == scan([dicomdir.parent])
    assert len(scan(dicomdir)) == len(order)


def test_missing_input_and_empty_folder_are_warnings(tmp_path):
    (tmp_path / "empty").mkdir()
    result = scan_media([tmp_path / "nope", tmp_path / "empty"])
    assert result.images == [] and len(result.warnings) == 2


def test_scan_finds_every_file_the_loader_opens_in_pydicom_corpus(tmp_path):
    """Inputs not designed here: pydicom's test files. Every file pydicom reads as an image
    (Rows and pixel data) must be found; every file found must be one pydicom sees as DICOM
    or Pillow opens."""
    from pydicom.data import get_testdata_file

    folder = Path(get_testdata_file("CT_small.dcm")).parent
    found = {os.path.realpath(p) for p in scan([folder])}
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if not path.is_file() or hidden:
            continue
        try:
            with warnings.catch_warnings():  # the corpus holds odd files on purpose
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path)
            is_image = "PixelData" in ds and "Rows" in ds
        except Exception:  # noqa: BLE001 - the oracle: what pydicom cannot read is no image
            is_image = False
        if is_image:
            assert os.path.realpath(path) in found, path


def test_real_data_nothing_loadable_is_missed(shared_data):
    found = {os.path.realpath(p) for p in scan([shared_data])}
    assert found
    for path in sorted(shared_data.rglob("*")):
        if path.is_file() and os.path.realpath(path) not in found:
            with pytest.raises(ImageLoadError):  # its only exception, with the reason
                load_image(path)


# ------------------------------------------------------------------ ordering properties ----
info_strategy = st.builds(
    DicomInfo, patient_id=st.sampled_from(["A", "B", "C"]),
    study_uid=st.sampled_from(["1.1", "1.2", "1.3"]),
    study_date=st.sampled_from(["", "20190101", "20200202", "20210303"]),
    series_uid=st.sampled_from(["2.1", "2.2"]), series_number=st.none() | st.integers(0, 20),
    instance=st.none() | st.integers(0, 30))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.none() | info_strategy, min_size=1, max_size=25), st.randoms())
def test_order_does_not_depend_on_listing_order(infos, rnd):
    entries = [(ImageRef(Path(f"/m/IM{i}")), info) for i, info in enumerate(infos)]
    # a study's date and a series' number belong to the study / series, as in real files
    firsts: dict = {}
    for _ref, info in entries:
        if info is not None:
            study = firsts.setdefault((info.patient_id, info.study_uid), info)
            info.study_date = study.study_date
            series = firsts.setdefault((info.patient_id, info.study_uid, info.series_uid), info)
            info.series_number = series.series_number
    expected = Catalogue.build([(ImageRef(r.path), i) for r, i in entries]).paths()
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    cat = Catalogue.build([(ImageRef(r.path), i) for r, i in shuffled])
    assert cat.paths() == expected
    assert sorted(map(str, expected)) == sorted(str(r.path) for r, _i in entries)
    for patient in cat.patients:
        dates = [s.date or "99999999" for s in patient.studies]
        assert dates == sorted(dates)
        for study in patient.studies:
            numbers = [(s.number is None, s.number or 0) for s in study.series]
            assert numbers == sorted(numbers)
            for series in study.series:
                keys = [(r.instance is None, r.instance or 0) for r in series.images]
                assert keys == sorted(keys)
    others = [str(r.path) for r in cat.others]
    assert others == sorted(others, key=natural_key)


def test_natural_key():
    names = ["IM10", "IM2", "im1", "IM1a"]
    assert sorted(names, key=natural_key) == ["im1", "IM1a", "IM2", "IM10"]
    random.shuffle(names)
    assert sorted(names, key=natural_key)[0] == "im1"


def test_quick_header_agrees_with_dcmread_on_pydicom_corpus():
    """The element-parser shortcut gives the same fields as a full `dcmread` header, also for
    pydicom's files in other character sets (Japanese, Korean, Greek, ... patient names)."""
    import warnings

    from pydicom.data import get_charset_files, get_testdata_file

    folders = [Path(get_testdata_file("CT_small.dcm")).parent,
               Path(get_charset_files("*.dcm")[0]).parent]
    compared = charsets = 0
    for path in sorted(p for folder in folders for p in folder.rglob("*")):
        if not path.is_file() or path.stat().st_size < 132:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with open(path, "rb") as f:
                    quick = scan_module._head_elements(f)
                full = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # noqa: BLE001 - the oracle: files pydicom cannot read are skipped
                continue
            if quick is None:
                continue
            assert scan_module._info(quick) == scan_module._info(full), path.name
            assert ("Rows" in quick) == ("Rows" in full), path.name
        compared += 1
        charsets += "charset" in str(path)
    assert compared > 100 and charsets > 10


_NAMES = st.sampled_from(["IM000001", "IM2", "1.2.840.113619.2.55.3.971", "a.dcm", "b.png",
                          "notes.txt", ".hidden", ".x.png", "DICOM", "ST000000", "report.csv",
                          "SE1", "scan.JPG"])
_KINDS = st.sampled_from(["png", "dicom", "bare", "text", "csv", "empty"])


def _write_kind(path: Path, kind: str, i: int) -> None:
    if kind == "png":
        Image.fromarray(np.full((3, 3), i, np.uint8)).save(path, format="PNG")
    elif kind in ("dicom", "bare"):
        ds = make_dataset(np.full((3, 3), i, np.uint16), StudyInstanceUID="1.2",
                          SeriesInstanceUID="1.2.3", InstanceNumber=i)
        if kind == "bare":
            del ds.file_meta
            ds.save_as(path, implicit_vr=True, little_endian=True)
        else:
            write(path, ds)
    elif kind == "text":
        path.write_text("1.2.840.10008 looks like a UID but this is text\n")
    elif kind == "csv":
        path.write_text("image,finding\nIM000001,none\n")
    else:
        path.write_bytes(b"")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(_NAMES, min_size=1, max_size=4), _KINDS), max_size=8))
def test_walk_finds_exactly_the_visible_images(tmp_path_factory, layout):
    """Random trees (names unrelated to content): the images found are exactly the image
    files with no hidden component, each once, and the same on a second scan."""
    root = tmp_path_factory.mktemp("tree")
    written: dict[tuple, str] = {}
    for parts, kind in layout:
        key = tuple(parts)
        if any(key[:n] in written for n in range(1, len(key) + 1)) or \
                any(k[:len(key)] == key for k in written):
            continue  # a file where a folder is wanted (or the reverse), or a repeat
        written[key] = kind
    for i, (key, kind) in enumerate(written.items()):
        path = root.joinpath(*key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_kind(path, kind, i + 1)
    expected = {root.joinpath(*key) for key, kind in written.items()
                if kind in ("png", "dicom", "bare") and not any(p.startswith(".") for p in key)}
    result = scan_media([root])
    assert set(result.images) == expected and len(result.images) == len(expected)
    visible_others = sum(1 for key, kind in written.items() if kind in ("text", "csv", "empty")
                         and not any(p.startswith(".") for p in key))
    assert result.skipped == visible_others
    assert scan([root]) == result.images


@settings(max_examples=100, deadline=None)
@given(st.lists(st.none() | info_strategy, min_size=1, max_size=20), st.integers(0, 20))
def test_adding_images_to_a_catalogue_is_building_it_with_them(infos, cut):
    """What the Studies panel does with an image opened on its own: the merged tree is the tree
    built from all the images (the new non-DICOM ones after the others), each image once."""
    # the added images' names sort first: only their rank can put them after the others
    entries = [(ImageRef(Path(f"/m/IM{len(infos) - i}")), info) for i, info in enumerate(infos)]
    first, second = entries[:cut], entries[cut:] + entries[:min(cut, 1)]  # one in both
    merged = Catalogue.build(first).adding(Catalogue.build(second))
    assert Catalogue.build(merged.entries()).paths() == merged.paths()
    assert sorted(map(str, merged.paths())) == sorted(str(r.path) for r, _ in entries)
    dicom = [r.path for r, i in Catalogue.build(entries).entries() if i is not None]
    assert [p for p in merged.paths() if p in dicom] == dicom
    others = [r.path for r, i in first if i is None]
    assert merged.paths()[len(dicom):len(dicom) + len(others)] == sorted(
        others, key=lambda p: natural_key(str(p)))
