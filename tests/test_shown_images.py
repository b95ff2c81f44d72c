"""Images shown on their own join the Studies list whatever the order of "scan starts / image
shown / scan finishes / an add comes back" (`ShownImages`, Qt-free; the panel's wiring is in
test_studies_gui.py). The reference: after everything settles, the list is the last scan's
result plus every image shown since that scan started (an image the scanner cannot list
excepted), and no image is asked for twice for one scan."""

from collections import Counter
from pathlib import Path

from hypothesis import given, settings, strategies as st

from gradcam_viewer.session.shown_images import ShownImages

PATHS = [Path(f"/images/{name}.png") for name in "abcde"]
UNLISTABLE = {PATHS[4]}  # the scanner gives no catalogue for it

events = st.lists(st.one_of(
    st.tuples(st.just("start"), st.frozensets(st.sampled_from(PATHS[:4]), max_size=3)),
    st.tuples(st.just("show"), st.sampled_from(PATHS)),
    st.tuples(st.just("finish"), st.none()),
    st.tuples(st.just("deliver"), st.none())), max_size=25)


class Panel:
    """What StudiesPanel does with ShownImages, its scans and adds run by the test."""

    def __init__(self) -> None:
        self.shown_images = ShownImages()
        self.listed: set[Path] = set()
        self.request = 0
        self.scan: frozenset[Path] | None = None  # the result of the running scan
        self.adds: list[tuple[int, Path]] = []  # asked for, not come back yet
        self.asked: Counter = Counter()

    def ask(self, paths: list[Path]) -> None:
        for path in paths:
            self.adds.append((self.request, path))
            self.asked[self.request, path] += 1

    def start(self, result: frozenset[Path]) -> None:
        self.request += 1
        self.scan = result
        self.shown_images.scan_started()

    def show(self, path: Path) -> None:
        self.ask(self.shown_images.shown(path, path in self.listed))

    def finish(self) -> None:
        if self.scan is not None:
            self.listed, self.scan = set(self.scan), None
            self.ask(self.shown_images.scan_finished(self.listed))

    def deliver(self) -> None:
        if self.adds:
            request, path = self.adds.pop(0)
            if request == self.request and path not in UNLISTABLE:  # a stale add is dropped
                self.listed.add(path)


@settings(max_examples=400, deadline=None)
@given(events)
def test_every_image_shown_since_the_last_scan_started_is_listed(steps):
    panel = Panel()
    last_result: frozenset[Path] = frozenset()
    shown_since_start: set[Path] = set()
    for kind, arg in steps:
        if kind == "start":
            panel.start(arg)
            last_result, shown_since_start = arg, set()
        elif kind == "show":
            panel.show(arg)
            shown_since_start.add(arg)
        else:
            getattr(panel, kind)()
        assert panel.shown_images.scanning == (panel.scan is not None)
    panel.finish()
    while panel.adds:
        panel.deliver()
    assert panel.listed == set(last_result) | (shown_since_start - UNLISTABLE)
    assert max(panel.asked.values(), default=0) <= 1


def test_an_image_shown_during_a_scan_waits_for_it():
    shown = ShownImages()
    shown.scan_started()
    assert shown.shown(PATHS[0], listed=False) == []  # the scan's result will replace the list
    assert shown.shown(PATHS[1], listed=True) == []
    assert shown.scan_finished([PATHS[1]]) == [PATHS[0]]  # listed by the scan: not asked
    assert shown.shown(PATHS[0], listed=False) == []  # asked once already
    assert shown.shown(PATHS[2], listed=False) == [PATHS[2]]  # no scan running: at once
