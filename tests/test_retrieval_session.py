"""A study arriving from a PACS while the reader pages through it, without Qt: the Qt-free
`StudyRetrieval` and the `SessionController` driven by Hypothesis through random interleavings
of arrivals (in any order), progress, listings, Page Up / Page Down, worker replies, Cancel, the
end of the retrieve and opening something else. The window does exactly this wiring
(ui/pacs_open.py, MainWindow._retrieved)."""

from pathlib import Path

import numpy as np
from hypothesis import given, settings, strategies as st

from gradcam_viewer.imaging.image import LoadedImage, Window
from gradcam_viewer.imaging.studies import DicomInfo, ImageRef
from gradcam_viewer.session.controller import OpenRequest, SessionController
from gradcam_viewer.session.results import ResultCache
from gradcam_viewer.session.retrieval import RetrieveState, StudyRetrieval

STUDY = "1.2.3"


def study_objects(shape: list[int]) -> list[tuple[ImageRef, DicomInfo]]:
    """Series s (numbered 1..) with shape[s-1] images each, file names unrelated to order."""
    objects = []
    for s, count in enumerate(shape, start=1):
        for i in range(1, count + 1):
            path = Path(f"/cache/{STUDY}/9{(s * 37 + i * 11) % 97}.{s}.{i}.dcm")
            info = DicomInfo("P^Q", "ID", STUDY, "20240101", "", "", f"{STUDY}.{s}", s, "DX",
                             "", i, 1)
            objects.append((ImageRef(path), info))
    return objects


def reading_order(objects) -> list[Path]:
    return [ref.path for ref, info in sorted(objects, key=lambda o: (o[1].series_number,
                                                                     o[1].instance))]


class WindowPart:
    """The window's part: listings go to the session; the worker loads what is opened."""

    def __init__(self):
        self.session = SessionController(cache=ResultCache())
        self.opens: list[OpenRequest] = []
        self.listed: list[Path] | None = None  # the last listing given to the session
        self.first_shown: Path | None = None

    def apply(self, effects) -> None:
        for request in effects.requests:
            if isinstance(request, OpenRequest):
                self.opens.append(request)

    def feed(self, retrieval: StudyRetrieval) -> None:
        listing = retrieval.listing()
        if listing is None:
            return
        self.listed = listing.paths
        self.apply(self.session.listing(listing.paths, listing.complete, listing.first))

    def load_one(self, index: int) -> None:
        if self.opens:
            request = self.opens.pop(index % len(self.opens))
            image = LoadedImage(request.path, np.zeros((2, 2), np.float32), "test",
                                Window(0, 1))
            self.apply(self.session.image_loaded(request.request_id, image))


ACTION = st.one_of(
    st.tuples(st.just("arrive"), st.integers(0, 5)),
    st.tuples(st.just("tick"), st.just(0)),
    st.tuples(st.just("step"), st.sampled_from([-1, 1])),
    st.tuples(st.just("load"), st.integers(0, 3)),
    st.tuples(st.just("progress"), st.integers(0, 3)),
    st.tuples(st.just("cancel"), st.just(0)),
    st.tuples(st.just("finish"), st.just(0)),
    st.tuples(st.just("other"), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.randoms(use_true_random=False),
       st.lists(ACTION, max_size=60))
def test_paging_while_a_study_arrives(shape, rnd, actions):
    objects = study_objects(shape)
    pending = list(objects)
    rnd.shuffle(pending)  # the PACS's order, not the reading order
    arrived: list = []
    w = WindowPart()
    retrieval = StudyRetrieval("PACS", STUDY)
    detached = finished = False
    cancels = 0
    for kind, arg in [*actions, ("finish", 0), ("tick", 0)]:
        s = w.session
        before = s.files.current
        had = w.listed
        if kind == "arrive" and pending and not finished:
            obj = pending.pop(arg % len(pending))
            arrived.append(obj)
            if retrieval.arrived([obj]):  # the first image: the window lists it at once
                w.feed(retrieval)
                if not detached:
                    assert w.listed == [obj[0].path] and s.files.current == obj[0].path
        elif kind == "tick":
            w.feed(retrieval)
        if kind in ("arrive", "tick") and not detached and w.listed != had:
            # every image on disk is listed once, in reading order
            assert w.listed == reading_order(arrived) == s.files.paths
            if before is not None and before in w.listed:
                assert s.files.current == before  # the place is kept
            if not had and w.listed:
                assert s.files.current == w.listed[0]  # the first image opens
        if kind == "step":
            paths, index = list(s.files.paths), s.files.index
            w.apply(s.step(arg))
            target = index + arg
            if paths and 0 <= target < len(paths):  # a key is never lost
                assert s.files.current == paths[target] and w.opens[-1].path == paths[target]
            else:
                assert s.files.current == before
        elif kind == "load":
            w.load_one(arg)
        elif kind == "progress":
            retrieval.progressed(len(arrived), len(pending), arg)
        elif kind == "cancel":
            cancels += retrieval.cancel()
            assert cancels <= 1 and (cancels == 0 or retrieval.running or finished)
        elif kind == "finish" and not finished:
            finished = True
            retrieval.finished(f"{len(arrived)} objects retrieved, 0 failed", 0, "",
                               retrieval.state is RetrieveState.CANCELLING)
            assert not retrieval.running
        elif kind == "other" and not detached:
            detached = True
            retrieval.detach()
            w.apply(s.open_files([Path("/elsewhere/x.png")]))
        if detached:  # once the user opened something else, arrivals change nothing shown
            assert s.files.paths == [Path("/elsewhere/x.png")]
    if not detached and arrived:
        assert w.listed == reading_order(arrived) == w.session.files.paths
        assert w.session.files.complete
    assert retrieval.state in (RetrieveState.DONE, RetrieveState.CANCELLED)
    assert retrieval.received == len(arrived)


def test_the_first_arrival_is_listed_at_once_and_the_rest_at_the_tick():
    objects = study_objects([3])
    retrieval = StudyRetrieval("PACS", STUDY)
    assert retrieval.listing() is None  # nothing yet
    assert retrieval.arrived([objects[2]]) is True
    first = retrieval.listing()
    assert first.first and not first.complete and first.paths == [objects[2][0].path]
    assert retrieval.arrived([objects[0]]) is False and retrieval.arrived([objects[0]]) is False
    retrieval.arrived([objects[1]])
    listing = retrieval.listing()
    assert not listing.first and listing.paths == reading_order(objects)
    assert retrieval.listing() is None  # unchanged since
    retrieval.progressed(3, 0, 0)
    assert retrieval.status_text() == "Retrieving from PACS: 3 of 3 object(s)"
    assert retrieval.cancel() and not retrieval.cancel()
    assert retrieval.status_text() == "Cancelling the retrieve from PACS..."
    retrieval.finished("3 objects retrieved, 0 failed (cancelled)", 0, "", True)
    assert retrieval.state is RetrieveState.CANCELLED and retrieval.listing().complete


def test_a_retrieve_that_found_nothing_failed():
    retrieval = StudyRetrieval("PACS", STUDY)
    retrieval.finished("0 objects retrieved, 0 failed", 0, "refused", False)
    assert retrieval.state is RetrieveState.FAILED
    assert retrieval.status_text() == "Retrieve from PACS: 0 objects retrieved, 0 failed"
