"""The list Page Up / Page Down walk, while it grows (a folder scan, a retrieve) and once it is
complete: no key pressed meanwhile is lost, and the position is kept when the scan ends."""

from pathlib import Path

from hypothesis import given, settings, strategies as st

from gradcam_viewer.session.files import FileList

P = [Path(f"/study/im{i}.dcm") for i in range(8)]


def test_a_complete_list_steps_within_its_ends():
    files = FileList()
    files.set(P[:3], 0)
    assert files.step(-1) is None and files.current == P[0]
    assert files.step(1) == P[1] and files.step(1) == P[2]
    assert files.step(1) is None and files.current == P[2]
    assert files.position() == "3 / 3"


def test_keys_before_the_first_file_is_known_count_from_where_the_list_starts():
    """The reported case: three PNGs, Page Down twice before the scan has listed them."""
    files = FileList()
    files.begin()
    assert files.step(1) is None and files.step(1) is None
    assert files.finish(P[:3]) and files.current == P[2]


def test_page_up_before_the_list_is_known_counts_from_the_file_asked_for():
    """Opening three files with the third first (as the viewer starts on its samples): Page Up
    pressed before the scan lists anything ends on the second; Up then Down on the third."""
    files = FileList()
    files.begin(first=P[2])
    files.step(-1)
    files.finish(P[:4])
    assert files.current == P[1]
    files.begin(first=P[2])
    files.step(-1)
    files.step(1)
    files.update(P[:3])
    assert files.current == P[2]
    files.begin(first=P[0])
    files.step(-1)  # nothing before the first file: Up does nothing, Down then moves on
    files.step(1)
    files.finish(P[:4])
    assert files.current == P[1]


def test_keys_past_the_last_known_file_are_taken_when_files_arrive():
    files = FileList()
    files.begin()
    assert files.update(P[:1]) and files.current == P[0]
    assert files.position() == "1 / 1+"
    assert files.step(1) is None and files.pending == 1  # the second file is not known yet
    assert files.update(P[:3]) and files.current == P[1]
    assert files.step(1) == P[2]
    assert files.step(1) is None and files.step(1) is None  # two past the end, kept
    assert not files.finish(P[:3]) and files.current == P[2] and files.pending == 0


def test_the_current_file_keeps_its_place_when_files_come_before_it():
    """A folder scan lists in reading order: a later update may put files before the one shown."""
    files = FileList()
    files.begin()
    files.update([P[3], P[5]])
    assert files.current == P[3]
    assert files.step(1) == P[5]
    assert not files.update([P[1], P[3], P[4], P[5]]) and files.current == P[5]
    assert files.step(-1) == P[4]
    assert not files.finish([P[0], P[1], P[3], P[4], P[5]]) and files.index == 3


def test_the_file_asked_for_first_is_waited_for():
    files = FileList()
    files.begin(first=P[2])
    assert not files.update(P[:2]) and files.current is None
    assert files.position() == "- / 2+"
    files.step(1)  # counted from the file asked for, once it is known
    assert files.update(P[:4]) and files.current == P[3]


def test_a_scan_that_finds_nothing_leaves_the_list_as_it_was():
    files = FileList()
    files.set(P[:3], 1)
    files.begin()
    files.step(1)
    assert not files.finish([]) and files.paths == P[:3] and files.current == P[1]
    assert files.complete and files.pending == 0


def test_a_file_picked_in_the_list_resets_the_keys_kept():
    files = FileList()
    files.begin()
    files.update(P[:2])
    files.step(5)
    files.choose(P[0])
    assert files.pending == 0 and files.current == P[0]
    assert files.update(P[:6]) is False and files.current == P[0]


STEPS = st.lists(st.sampled_from([-1, 1, 1]), max_size=12)


@settings(max_examples=500, deadline=None)
@given(total=st.integers(1, 8), first=st.one_of(st.none(), st.integers(0, 7)),
       events=st.lists(st.one_of(st.tuples(st.just("step"), st.sampled_from([-1, 1, 1])),
                                 st.tuples(st.just("more"), st.integers(0, 3))), max_size=30),
       after=STEPS)
def test_keys_during_a_retrieve_lead_where_they_would_on_the_whole_list(total, first, events,
                                                                      after):
    """Files arrive in reading order (a prefix grows); keys come at any time. Never a move
    outside the files known; at the end the position is where the keys lead: the virtual
    position (a Page Up from beyond the end first takes back what was beyond), clamped to the
    list, counted from the file the list starts at."""
    final = P[:total]
    first_path = final[first] if first is not None and first < total else None
    start = final.index(first_path) if first_path is not None else 0
    files = FileList()
    files.begin(first_path)
    known, early, virtual = 0, [], None  # the oracle: keys before the start, then the position

    def walk(keys: list[int]) -> int:  # the keys one by one on the whole list, from the start
        position = start
        for key in keys:
            position = max(0, position + key)
        return position

    for kind, value in events:
        if kind == "more":
            known = min(total, known + value)
            files.update(final[:known])
            if virtual is None and known > start:
                virtual = walk(early)
        elif virtual is None:
            files.step(value)
            early.append(value)
        else:
            files.step(value)
            virtual = max(0, virtual + value)
        if virtual is None:
            assert files.current is None
        else:
            assert files.index == min(virtual, known - 1)
    files.finish(final)
    virtual = walk(early) if virtual is None else virtual
    assert files.current == final[min(virtual, total - 1)]
    for value in after:  # a complete list: steps within its ends, as ever
        before = files.index
        files.step(value)
        assert files.index == (before + value if 0 <= before + value < total else before)
