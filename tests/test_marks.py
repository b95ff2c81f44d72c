"""The Qt-free marks: shapes rasterised as scikit-image draws them (test-only oracle), the
store (keys, atomic writes, unreadable files), the undo history, and the localisation scores
against references computed here from a map and a mask (scipy labels the regions)."""

import json
import math
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import requirements
from gradcam_viewer.cam.heatmap import normalize_heatmaps
from gradcam_viewer.marks import NO_FINDING, ImageMarks, Kind, Mark
from gradcam_viewer.marks.history import MarkEditor
from gradcam_viewer.marks.scores import localise
from gradcam_viewer.marks.shapes import ImageKey
from gradcam_viewer.marks.store import FileHashes, MarkStore, image_key
from gradcam_viewer.trust import evaluate as ev

coord = st.floats(-5, 45, allow_nan=False).map(lambda v: round(v, 3) + 0.0001)


def draw():
    return requirements.module("skimage.draw", "pip install -e '.[test]'")


# --- rasterisation --------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(coord, coord), min_size=3, max_size=9))
def test_polygon_mask_equals_scikit_image(points):
    """Any polygon (self-intersecting ones too: even-odd rule) covers the pixels skimage fills;
    skimage puts pixel centres at integers, ours at +0.5."""
    shape = (37, 41)
    want = np.zeros(shape, bool)
    ys, xs = np.array([p[1] for p in points]), np.array([p[0] for p in points])
    rr, cc = draw().polygon(ys - 0.5, xs - 0.5, shape)
    want[rr, cc] = True
    got = Mark.polygon(points, "Mass").mask(shape)
    # a pixel centre on an edge may fall either way (skimage leaves it undefined)
    differ = [(r, c) for r, c in np.argwhere(got != want)
              if _distance_to_edges((c + 0.5, r + 0.5), points) > 1e-9]
    assert not differ, differ[:5]


def _distance_to_edges(p, points):
    p, best = np.asarray(p), np.inf
    for a, b in zip(points, points[1:] + points[:1], strict=True):
        a, b = np.asarray(a), np.asarray(b)
        t = np.clip(np.dot(p - a, b - a) / max(np.dot(b - a, b - a), 1e-300), 0, 1)
        best = min(best, float(np.linalg.norm(p - (a + t * (b - a)))))
    return best


def _ellipse(cx, cy, a, b, angle):
    """SR ELLIPSE's 4 points (major axis ends, minor axis ends) and the major axis direction."""
    ux, uy = math.cos(angle), math.sin(angle)
    return ((cx - a * ux, cy - a * uy), (cx + a * ux, cy + a * uy),
            (cx + b * uy, cy - b * ux), (cx - b * uy, cy + b * ux)), ux, uy


@settings(max_examples=150, deadline=None)
@given(coord, coord, st.floats(0.6, 25), st.floats(0.6, 25), st.floats(-math.pi, math.pi))
def test_rotated_ellipse_mask_equals_scikit_image(cx, cy, a, b, angle):
    points, ux, uy = _ellipse(cx, cy, a, b, angle)
    shape = (40, 44)
    want = np.zeros(shape, bool)
    # skimage: c_radius along the columns turned by `rotation` anticlockwise on screen (y down)
    rr, cc = draw().ellipse(cy - 0.5, cx - 0.5, b, a, shape, rotation=math.atan2(-uy, ux))
    want[rr, cc] = True
    got = Mark(Kind.ELLIPSE, points, "Nodule").mask(shape)
    # boundary pixels within rounding of the ellipse's equation may fall either way
    centres = np.stack(np.meshgrid(np.arange(shape[1]) + 0.5, np.arange(shape[0]) + 0.5), -1)
    d = centres - (cx, cy)
    level = ((d @ (ux, uy)) / a) ** 2 + ((d @ (-uy, ux)) / b) ** 2
    differ = (got != want) & (np.abs(level - 1) > 1e-9)
    assert not differ.any(), np.argwhere(differ)[:5]


def test_the_ellipse_oracle_is_read_the_right_way_round():
    """The skimage call above really is the ellipse whose major axis runs down-right."""
    rr, cc = draw().ellipse(20, 20, 3, 15, (41, 41), rotation=math.atan2(-1, 1))
    mask = np.zeros((41, 41), bool)
    mask[rr, cc] = True
    assert mask[29, 29] and not mask[11, 29]
    mark = Mark(Kind.ELLIPSE, ((10.5, 10.5), (30.5, 30.5), (22.5, 18.5), (18.5, 22.5)), "x")
    assert mark.mask((41, 41))[29, 29] and not mark.mask((41, 41))[11, 29]


@settings(max_examples=80, deadline=None)
@given(coord, coord, coord, coord)
def test_rectangle_is_the_polygon_of_its_corners_and_evaluates_nih_box_pixels(x0, y0, x1, y1):
    rect = Mark.rectangle(x0, y0, x1, y1, "Mass")
    (ax, ay), (bx, by) = rect.points
    poly = Mark.polygon(((ax, ay), (bx, ay), (bx, by), (ax, by)), "Mass")
    shape = (40, 42)
    assert np.array_equal(rect.mask(shape), poly.mask(shape))
    # pixel (r, c) is in when its centre (c + .5, r + .5) is in [x0, x1) x [y0, y1)
    r, c = np.mgrid[:40, :42] + 0.5
    assert np.array_equal(rect.mask(shape), (c >= ax) & (c < bx) & (r >= ay) & (r < by))


@settings(max_examples=100, deadline=None)
@given(coord, coord, st.floats(0.5, 20), st.floats(0.5, 20), st.floats(-math.pi, math.pi))
def test_bounds_are_tight_around_the_shape(cx, cy, a, b, angle):
    points, ux, uy = _ellipse(cx, cy, a, b, angle)
    x0, y0, x1, y1 = Mark(Kind.ELLIPSE, points, "x").bounds()
    t = np.linspace(0, 2 * np.pi, 20001)
    xs = cx + a * np.cos(t) * ux - b * np.sin(t) * uy
    ys = cy + a * np.cos(t) * uy + b * np.sin(t) * ux
    assert (x0, y0, x1, y1) == pytest.approx((xs.min(), ys.min(), xs.max(), ys.max()), abs=1e-5)


def test_a_drawn_ellipse_is_inscribed_in_its_box_and_resizes_with_it():
    mark = Mark.ellipse_in(30, 10, 10, 50, "Nodule")  # dragged up-left
    assert mark.bounds() == (10, 10, 30, 50)
    assert mark.points[:2] == ((20, 10), (20, 50))  # the major axis first (the longer side)
    bigger = mark.fitted((0, 0, 100, 20))
    assert bigger.bounds() == pytest.approx((0, 0, 100, 20)) and bigger.id == mark.id
    rotated = Mark(Kind.ELLIPSE, ((0, 0), (20, 20), (12, 8), (8, 12)), "x", source="SR")
    stretched = rotated.fitted((0, 0, 40, 40))
    (x1, y1), (x2, y2), (x3, y3), (x4, y4) = stretched.points
    assert (x2 - x1) * (x4 - x3) + (y2 - y1) * (y4 - y3) == pytest.approx(0, abs=1e-9)
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((20, 20))  # the box's centre


def test_marks_survive_json_and_keep_their_rules():
    key = ImageKey("sop", "1.2.826.0.1.3680043.8.498.1", 2)
    marks = ImageMarks(key, (), "IM1", (100, 80))
    rect = Mark.rectangle(1, 2, 30, 40, "Mass")
    poly = Mark.polygon(((5, 5), (50, 5), (20, 60)), "Effusion")
    other = Mark(Kind.ELLIPSE, ((0, 0), (20, 20), (12, 8), (8, 12)), "Nodule", source="SR x")
    marks = marks.with_mark(rect).with_mark(poly).with_mark(other)
    back = ImageMarks.from_json(json.loads(json.dumps(marks.to_json())))
    assert back == marks and back.get(other.id).read_only
    with pytest.raises(ValueError, match="delete them before"):
        marks.with_mark(Mark.no_finding())
    normal = ImageMarks(key, (), "IM1", (100, 80)).with_mark(Mark.no_finding())
    assert normal.no_finding and normal.marks[0].finding == NO_FINDING
    assert normal.marks[0].mask((4, 3)).all() and normal.marks[0].bounds((4, 3)) == (0, 0, 3, 4)
    assert not normal.with_mark(rect).no_finding  # a finding marked: not normal any more
    assert marks.findings() == ["Mass", "Effusion", "Nodule"]
    assert np.array_equal(marks.mask_of("Mass"), rect.mask((100, 80)))
    assert marks.mask_of("Edema") is None
    for bad in ([], [(0, 0)] * 3):
        with pytest.raises(ValueError):
            Mark(Kind.RECTANGLE, tuple(bad), "x")
    with pytest.raises(ValueError):
        Mark.polygon(((0, 0), (1, float("nan")), (2, 2)), "x")


# --- the store ------------------------------------------------------------------------------

def test_a_copied_or_renamed_png_keeps_its_marks_and_dicom_is_keyed_by_its_uid(tmp_path):
    store = MarkStore(tmp_path / "store")
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG fake bytes")
    key = image_key(png)
    assert key.kind == "sha256" and len(key.value) == 64
    store.save(store.load(key, "a.png", (10, 10)).with_mark(Mark.rectangle(1, 1, 5, 5, "Mass")))
    copy = tmp_path / "elsewhere" / "renamed.png"
    copy.parent.mkdir()
    shutil.copyfile(png, copy)
    again = store.load(image_key(copy), "renamed.png")
    assert [m.finding for m in again.marks] == ["Mass"] and again.name == "renamed.png"
    uid = "1.2.840.113619.2.55.3.1"
    assert image_key(png, 3, uid) == ImageKey("sop", uid, 3)
    assert image_key(png, 0, "not a uid").kind == "sha256"  # a broken header: by content
    # the one UID check (launch.requests.is_uid) that marks export applies too
    for not_a_uid in ("1..2", ".1.2", "1.2.", "1" * 65):
        assert image_key(png, 0, not_a_uid).kind == "sha256", not_a_uid
    assert [m.key for m in store] == [key]


def test_hashes_are_computed_once_per_file_version(tmp_path, monkeypatch):
    path = tmp_path / "x.png"
    path.write_bytes(b"one")
    hashes, opened = FileHashes(), []
    real_open = open

    def counting_open(p, *args, **kwargs):
        opened.append(p)
        return real_open(p, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    first = hashes.sha256(path)
    assert hashes.sha256(path) == first and len(opened) == 1
    path.write_bytes(b"two")
    os.utime(path, ns=(1, 1))
    assert hashes.sha256(path) != first and len(opened) == 2


def test_writes_are_atomic_and_an_unreadable_file_loses_nothing_else(tmp_path, monkeypatch):
    store = MarkStore(tmp_path)
    key = ImageKey("sha256", "ab" * 32)
    marks = store.load(key, "a.png", (20, 20)).with_mark(Mark.rectangle(0, 0, 4, 4, "Mass"))
    store.save(marks)

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        store.save(marks.with_mark(Mark.rectangle(5, 5, 9, 9, "Nodule")))
    monkeypatch.undo()
    assert store.load(key) == marks  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == [store.path_of(key).name]  # no temp left
    store.path_of(key).write_text("{ torn")
    assert store.load(key, "a.png").marks == ()  # logged, not raised
    assert list(store) == []


def test_editor_saves_every_change_and_undoes_per_image(tmp_path):
    seen = []
    editor = MarkEditor(MarkStore(tmp_path), saved=seen.append)
    a, b = ImageKey("sha256", "a" * 64), ImageKey("sha256", "b" * 64)
    editor.show(a, "a.png", (50, 50))
    rect = Mark.rectangle(1, 1, 9, 9, "Mass")
    editor.put(rect)
    editor.put(rect.moved(10, 0))
    assert MarkStore(tmp_path).load(a).marks == (rect.moved(10, 0),)
    editor.show(b, "b.png", (50, 50))
    editor.put(Mark.no_finding())
    editor.show(a)
    assert editor.undo() and editor.marks.marks == (rect,)
    assert editor.undo() and editor.marks.marks == () and not editor.undo()
    assert editor.redo() and editor.redo() and not editor.redo()
    assert MarkStore(tmp_path).load(a).marks == (rect.moved(10, 0),)
    assert MarkStore(tmp_path).load(b).no_finding
    assert len(seen) == 7
    other = Mark(Kind.POLYGON, ((1, 1), (9, 1), (5, 9)), "Mass", source="SR by Dr X")
    editor.change(editor.marks.with_mark(other))
    editor.selected = other.id
    assert not editor.delete()
    with pytest.raises(ValueError, match="edit a copy"):
        editor.put(other.moved(1, 1))
    copy = editor.copy_selected()
    assert copy is not None and not copy.read_only and copy.id != other.id
    assert editor.selected == copy.id and len(editor.marks.marks) == 3


def test_marks_read_from_a_report_are_not_an_edit_undo_takes_back(tmp_path):
    editor = MarkEditor(MarkStore(tmp_path))
    key = ImageKey("sop", "1.2.3.4")
    editor.show(key, "IM1", (50, 50))
    theirs = Mark(Kind.RECTANGLE, ((1, 1), (9, 9)), "Nodule", "sr-1", source="SR by Dr X")
    editor.add_read_only([theirs])
    assert not editor.undo() and editor.marks.marks == (theirs,)
    mine = Mark.rectangle(20, 20, 30, 30, "Mass")
    editor.put(mine)
    newer = Mark(Kind.RECTANGLE, ((2, 2), (9, 9)), "Nodule", "sr-1", source="SR by Dr X")
    editor.add_read_only([newer])  # a later report of the same mark replaces it
    assert editor.undo() and editor.marks.marks == (newer,)  # your mark undone, theirs kept
    assert not editor.undo()
    assert editor.redo() and editor.marks.marks == (newer, mine)
    assert MarkStore(tmp_path).load(key).marks == (newer, mine)
    with pytest.raises(ValueError, match="read from elsewhere"):
        editor.add_read_only([mine])


def test_a_report_read_again_replaces_what_it_gave(tmp_path):
    """Read-only marks are replaced per report: one read again with fewer or other marks leaves
    exactly those, one read again with none for this image leaves none, and other reports'
    marks and your own stay."""
    editor = MarkEditor(MarkStore(tmp_path))
    key = ImageKey("sop", "1.2.3.4")
    editor.show(key, "IM1", (50, 50))

    def theirs(source, n, x=1):
        return Mark(Kind.RECTANGLE, ((x, n), (x + 5, n + 5)), "Nodule", f"sr-{source}-{n}",
                    source=source)

    mine = Mark.rectangle(20, 20, 30, 30, "Mass")
    editor.put(mine)
    editor.add_read_only([theirs("A", 1), theirs("A", 2), theirs("B", 1)])
    editor.add_read_only([theirs("A", 3, x=9)])  # A corrected: one other mark
    assert set(editor.marks.marks) == {mine, theirs("B", 1), theirs("A", 3, x=9)}
    editor.add_read_only([], sources=["A", "C"])  # A now has nothing for this image
    assert set(editor.marks.marks) == {mine, theirs("B", 1)}
    moved = replace(theirs("B", 1), source="D")  # B's mark met in a newer report D
    editor.add_read_only([moved])
    assert editor.marks.marks == (moved, mine)
    assert MarkStore(tmp_path).load(key).marks == (moved, mine)
    assert editor.undo() and editor.marks.marks == (moved,)  # your mark undone; theirs kept


EDITS = st.lists(st.one_of(st.sampled_from(["draw", "move", "delete", "undo", "redo"]),
                           st.tuples(st.just("read"), st.integers(0, 2),
                                     st.sets(st.integers(0, 3), max_size=3))), max_size=25)


@settings(max_examples=60, deadline=None)
@given(EDITS)
def test_undo_and_redo_step_only_your_marks_in_any_order(edits):
    """Random orders of your edits, undo, redo and reports read: your marks follow a plain undo
    history in which the reports are no step, and the read-only marks are always what the
    latest read of each report gave, no more; the store holds what the editor shows."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        store = MarkStore(Path(folder))
        editor = MarkEditor(store)
        key = ImageKey("sop", "1.2.3.4")
        editor.show(key, "IM1", (100, 100))
        own: list[Mark] = []
        undo: list[list[Mark]] = []
        redo: list[list[Mark]] = []
        theirs: dict[int, set[Mark]] = {}
        for n, edit in enumerate(edits):
            if edit == "draw" or (edit in ("move", "delete") and own):
                undo.append(list(own))
                redo.clear()
                if edit == "draw":
                    own.append(Mark.rectangle(n, n, n + 5, n + 5, "Mass"))
                    editor.put(own[-1])
                elif edit == "move":
                    own[-1] = own[-1].moved(1, 0)
                    editor.put(own[-1])
                else:
                    assert editor.delete(own.pop(0).id)
            elif edit in ("undo", "redo"):
                stack, other = (undo, redo) if edit == "undo" else (redo, undo)
                assert getattr(editor, edit)() == bool(stack)
                if stack:
                    other.append(own)
                    own = stack.pop()
            elif isinstance(edit, tuple):  # report i read (again), with these marks
                _, i, held = edit
                theirs[i] = {Mark(Kind.RECTANGLE, ((i * 10, j), (i * 10 + 5, 5 + n)), "Nodule",
                                  f"sr-{i}-{j}", source=f"SR {i} by Dr X") for j in held}
                editor.add_read_only(theirs[i], sources=[f"SR {i} by Dr X"])
            shown = editor.marks.marks
            assert [m for m in shown if not m.read_only] == own
            assert {m for m in shown if m.read_only} == set().union(*theirs.values())
            assert store.load(key).marks == shown


# --- the scores -----------------------------------------------------------------------------

def _upsample_reference(small, shape):
    """Bilinear with half-pixel centres and edge clamping, written out with np.interp."""
    def along(values, n_out):
        n_in = values.shape[-1]
        c = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        return np.stack([np.interp(c, np.arange(n_in), row) for row in values])

    return along(along(small, shape[1]).T, shape[0]).T


def _reference(small, mask, threshold):
    """The four figures as the scores module documents them, by other means: np.interp for the
    upsampling, scipy.ndimage for the regions (found on a grid of at most 256 a side, their
    boxes scaled back to the image)."""
    ndimage = requirements.module("scipy.ndimage", "pip install -e '.[test]'")
    up = _upsample_reference(small.astype(np.float64), mask.shape)
    peak = np.unravel_index(np.argmax(up), up.shape)
    hot = up >= threshold
    h, w = mask.shape
    scale = max(1.0, max(h, w) / 256)
    grid = (max(1, round(h / scale)), max(1, round(w / scale)))
    labelled, _ = ndimage.label(_upsample_reference(small.astype(np.float64), grid) >= threshold)
    sy, sx = h / grid[0], w / grid[1]
    iobb = 0.0
    for rows, cols in ndimage.find_objects(labelled):
        box = mask[round(rows.start * sy):round(rows.stop * sy),
                   round(cols.start * sx):round(cols.stop * sx)]
        iobb = max(iobb, box.sum() / box.size)
    return (float(mask[peak]), up[mask].sum() / up.sum(), (hot & mask).sum() / (hot | mask).sum(),
            iobb)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([0.2, 0.35, 0.5]), st.sampled_from(
    [(120, 100), (224, 224), (97, 181), (700, 530)]))
def test_scores_equal_a_reference_from_the_map_and_the_mask(seed, threshold, shape):
    rng = np.random.default_rng(seed)
    raw = rng.random((7, 7)).astype(np.float32) ** 3
    small = normalize_heatmaps(raw[None])[0][0]
    h, w = shape
    x0, y0 = rng.uniform(0, w * 0.6), rng.uniform(0, h * 0.6)
    mark = (Mark.ellipse_in(x0, y0, x0 + rng.uniform(5, w * 0.4), y0 + rng.uniform(5, h * 0.4),
                            "x") if seed % 2 else
            Mark.polygon([tuple(p) for p in rng.uniform(0, 1, (6, 2)) * (w, h)], "x"))
    mask = mark.mask(shape)
    got = localise(small, mask, threshold)
    want = _reference(small, mask, threshold)
    # float32 (Pillow) against float64 (np.interp): a pixel within 1e-7 of the threshold may
    # fall either way, a few in 10^5 of the union
    assert (got.hit, got.energy, got.iou, got.iobb) == pytest.approx(want, abs=5e-4)


def test_live_score_scores_your_marks_and_read_only_marks_apart():
    """Each reader's union of a finding's shapes against the map, equal to evaluate's figures
    for those marks and to the reference; cached masks and maps change nothing."""
    from gradcam_viewer.marks.live import LiveScorer, ScoreInput

    rng = np.random.default_rng(11)
    raw = rng.random((2, 9, 9)).astype(np.float32) ** 2
    small = normalize_heatmaps(raw)[0]
    shape = (210, 160)
    yours = [Mark.rectangle(20.5, 30, 90, 120.5, "Mass"),
             Mark.polygon([(60, 100), (150, 110), (120, 200)], "Mass"),
             Mark.rectangle(150, 200, 161, 211, "Mass")]  # in a corner, to the last pixel
    theirs = [Mark(Kind.ELLIPSE, ((10, 60), (110, 60), (60, 30), (60, 90)), "Mass", "sr-1",
                   source="Doe, SR1"),
              Mark(Kind.RECTANGLE, ((0, 0), (40, 40)), "Mass", "sr-2", source="Roe, SR2")]
    marks = ImageMarks(ImageKey("sop", "1.2.3"), (*theirs, *yours), "IM1", shape)
    request = ScoreInput(("IM1", 0, "gradcam", 1), small, ("Nodule", "Mass"), marks, shape, 0.35)
    scorer = LiveScorer()
    first = scorer.score(request)
    assert set(first.yours) == set(first.theirs) == {1}
    assert first.sources == {1: "Doe, SR1; Roe, SR2"}
    for group, got in ((yours, first.yours[1]), (theirs, first.theirs[1])):
        mask = np.zeros(shape, bool)
        for m in group:
            mask |= m.mask(shape)
        assert got == localise(small[1], mask, 0.35)
        assert (got.hit, got.energy, got.iou, got.iobb) == pytest.approx(
            _reference(small[1], mask, 0.35), abs=5e-4)
        at_half = ev.localise_marks(raw[1], group, shape)  # evaluate, at its threshold
        assert at_half == localise(small[1], mask, 0.5).as_dict()
    # again from its caches, after a mark moved, at another threshold: as a fresh scorer
    for changed in (request, replace(request, threshold=0.6),
                    replace(request, marks=marks.with_mark(yours[0].moved(7, -3)))):
        assert scorer.score(changed) == LiveScorer().score(changed)


def test_live_score_caches_are_dropped_on_another_image_and_bounded_by_bytes():
    """A scorer that scored image A and then image B keeps exactly what one that scored only B
    keeps (A's full-size maps and masks are gone); under a byte bound smaller than two maps it
    holds no more than the bound and still gives the same scores."""
    from gradcam_viewer.marks.live import LiveScorer, ScoreInput

    small = normalize_heatmaps(np.random.default_rng(5).random((2, 9, 9)).astype(np.float32))[0]
    shape = (210, 160)

    def request(uid, result):
        marks = ImageMarks(ImageKey("sop", uid), (Mark.rectangle(20, 30, 90, 120, "Mass"),
                                                  Mark.rectangle(5, 5, 50, 40, "Nodule")),
                           "IM", shape)
        return ScoreInput(result, small, ("Nodule", "Mass"), marks, shape, 0.4)

    a, b = request("1.2.3", ("A", 0)), request("1.2.4", ("B", 0))
    scorer = LiveScorer()
    scorer.score(a)
    assert scorer.cached_bytes >= 2 * 210 * 160 * 4  # both maps of A
    only_b = LiveScorer()
    only_b.score(b)
    assert scorer.score(b) == only_b.score(b)
    assert scorer.cached_bytes == only_b.cached_bytes
    bound = 210 * 160 * 4 + 1000  # one map and a little
    small_scorer = LiveScorer(max_bytes=bound)
    for asked in (a, b, replace(b, threshold=0.6), a):
        assert small_scorer.score(asked) == LiveScorer().score(asked)
        assert 0 < small_scorer.cached_bytes <= bound


def test_evaluate_scores_a_box_as_the_viewer_scores_its_rectangle():
    """evaluate's per-box figures are the live score's functions on the rectangle's mask."""
    rng = np.random.default_rng(3)
    raw = rng.random((8, 8)).astype(np.float32)
    box = ev.Box("a.png", "Mass", 30.5, 12, 41, 57.25)
    got = ev.localise(raw, box, (150, 120))
    mask = Mark.rectangle(30.5, 12, 71.5, 69.25, "Mass").mask((150, 120))
    small = normalize_heatmaps(raw[None])[0][0]
    assert got == localise(small, mask, ev.BINARY_THRESHOLD).as_dict()
    assert (got["hit"], got["energy"], got["iou"], got["iobb"]) == pytest.approx(
        _reference(small, mask, 0.5), abs=2e-5)


def test_a_map_without_evidence_scores_zero():
    assert localise(np.zeros((7, 7), np.float32), np.ones((20, 20), bool)).as_dict() == {
        "hit": 0.0, "energy": 0.0, "iou": 0.0, "iobb": 0.0, "threshold": 0.5}


def test_an_unreadable_marks_file_is_logged_without_its_uid(tmp_path, caplog):
    store = MarkStore(tmp_path)
    uid = "1.2.826.0.1.3680043.8.498.77"
    key = ImageKey("sop", uid)
    store.path_of(key).write_text("{ torn")
    store.path_of(ImageKey("sop", uid + ".1")).mkdir()  # unreadable: a folder
    with caplog.at_level("WARNING"):
        assert store.load(key).marks == ()
        assert store.load(ImageKey("sop", uid + ".1")).marks == ()
        assert list(store) == []
    assert len(caplog.records) == 4 and uid not in caplog.text
