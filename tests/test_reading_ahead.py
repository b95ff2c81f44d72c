"""Reading ahead in the session controller and the worker's agenda, without Qt or TensorFlow
(tests/session_harness.py): what is read ahead, in which order, that it never delays a user
request, never shows a wrong result, keeps the cache within its budget, and that keys pressed
while a folder is scanned or a study retrieved are never lost."""

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from gradcam_viewer.session.agenda import Stage
from gradcam_viewer.session.controller import (
    ExplainRequest,
    ModelRequest,
    OpenRequest,
    SessionController,
)
from gradcam_viewer.session.read_ahead import PrefetchRequest
from gradcam_viewer.session.results import ModelInfo
from session_harness import (
    FILES,
    IMAGE_BYTES,
    METHODS,
    RESULT_BYTES,
    Harness,
    make_image,
    make_result,
    shown_is_consistent,
    within_budget,
)

LIST = FILES[:4]  # the bad file is tried on its own (see the Hypothesis test)


def _ready(read_ahead: bool = True, budget: int | None = None, at: int = 1) -> Harness:
    """A model, the list open at `at`, everything settled."""
    h = Harness(budget=budget, read_ahead=read_ahead)
    h.apply(h.c.load_model("demo", ""))
    h.user(h.c.open_files(LIST, at), LIST[at])
    h.drain(random.Random(0))
    h.check_final()
    return h


def _kinds(effects):
    return [type(r) for r in effects.requests]


def test_the_neighbours_are_read_ahead_once_the_image_on_screen_is_explained():
    h = Harness()
    h.apply(h.c.load_model("demo", ""))
    opened = h.c.open_files(LIST, 1)
    assert _kinds(opened) == [OpenRequest]  # nothing else while its work is not done
    h.user(opened, LIST[1])
    h.drain(random.Random(1))
    for neighbour in (LIST[0], LIST[2]):
        assert h.c.cache.image(neighbour) is not None
        assert h.c.cache.get((str(neighbour), 0, "gradcam", 1)) is not None
    assert h.w.decodes == [LIST[1], LIST[2], LIST[0]]  # Page Down's neighbour first


def test_page_down_onto_a_file_read_ahead_shows_image_and_heatmap_at_once():
    h = _ready()
    effects = h.c.step(1)
    assert not any(isinstance(r, (OpenRequest, ExplainRequest)) for r in effects.requests)
    assert h.c.image.path == LIST[2] and h.c.result is not None and not h.c.busy
    assert h.c.result.key == (str(LIST[2]), 0, "gradcam", 1)
    # the next neighbour is asked for at once, the one just left is in the cache already
    assert [r.path for r in effects.requests if isinstance(r, PrefetchRequest)] == [LIST[3]]


def _settled_prefetches(c, effects):
    """Answer the open in `effects` (image, then result): the reads ahead asked for, in order."""
    (request,) = [r for r in effects.requests if isinstance(r, OpenRequest)]
    c.image_loaded(request.request_id, make_image(request.path))
    done = c.explained(request.request_id,
                       make_result((str(request.path), 0, c.method, c.model.model_id)))
    return [r.path for r in done.requests if isinstance(r, PrefetchRequest)]


def test_after_a_direction_change_the_other_neighbour_goes_first():
    c = SessionController()
    c.model_loaded(ModelInfo(1, "m", ["a", "b"], {}, False, []))
    assert _settled_prefetches(c, c.open_files(LIST, 1)) == [LIST[2], LIST[0]]
    c.cache.clear()  # nothing cached: both neighbours are asked for again, in the new order
    assert _settled_prefetches(c, c.step(1)) == [LIST[3], LIST[1]]
    c.cache.clear()
    assert _settled_prefetches(c, c.step(-1)) == [LIST[0], LIST[2]]


def test_without_reading_ahead_nothing_is_asked_for_but_the_user_s_file():
    h = _ready(read_ahead=False)
    assert h.w.decodes == [LIST[1]]
    effects = h.c.step(1)
    assert _kinds(effects) == [OpenRequest]


def test_a_user_request_goes_before_the_read_ahead_between_stages():
    """A read ahead decoded and waiting for its model input; the user opens another file: no
    stage of the read ahead runs until the user's file is explained, then it goes on."""
    h = Harness()
    h.apply(h.c.load_model("demo", ""))
    h.w.receive()
    h.deliver(0)
    h.user(h.c.open_files(LIST, 1), LIST[1])
    rnd = random.Random(4)
    while not any(isinstance(r, PrefetchRequest) for r in h.w.queue) or h.w.outbox:
        h.step_worker(rnd)
    while h.w.queue:
        h.w.receive()
    (ahead,) = h.w.decoding  # one read ahead decodes at a time
    h.w.end_decode(0)
    assert ahead.stage is Stage.PREPARE
    h.w.stages.clear()
    h.user(h.c.open(LIST[3]), LIST[3])  # not a neighbour: a user open of its own
    h.w.receive()
    assert h.w.agenda.next_stage() is None  # the user's decode is in flight: nothing runs
    h.w.end_decode(len(h.w.decoding) - 1, give_up=False)
    h.drain(rnd)
    h.check_final()
    kinds = [kind for kind, _ in h.w.stages]
    assert kinds[:2] == ["open", "open"]  # model input and explanation of the user's file


def _decoding_ahead(seed: int) -> tuple[Harness, random.Random]:
    """The list open at its second file, the third being decoded ahead."""
    h = Harness()
    h.apply(h.c.load_model("demo", ""))
    h.user(h.c.open_files(LIST, 1), LIST[1])
    rnd = random.Random(seed)
    while not h.w.decoding or h.w.decoding[0].path != LIST[2]:
        h.step_worker(rnd)
    return h, rnd


def test_page_down_onto_a_file_being_decoded_ahead_takes_that_decode_over():
    h, rnd = _decoding_ahead(5)
    h.user(h.c.step(1), LIST[2])
    assert h.c.busy and h.c.opening is not None
    h.drain(rnd)
    h.check_final()
    assert h.w.decodes.count(LIST[2]) == 1  # decoded once, for both


def test_a_decode_for_a_file_no_longer_wanted_is_given_up():
    h, rnd = _decoding_ahead(6)
    job = h.w.decoding[0]
    assert not h.w.agenda.image_unwanted(job)
    h.user(h.c.open_listed(LIST[3]), LIST[3])  # far from the file read ahead... 3 is its
    assert not h.w.agenda.image_unwanted(job)  # neighbour: still wanted
    h.user(h.c.open_files(LIST, 0), LIST[0])  # ...and now it is not (0's neighbour is 1)
    assert h.w.agenda.image_unwanted(job)
    h.drain(rnd)
    h.check_final()


def _held_beyond_the_cache(h: Harness) -> list:
    """Images the worker's agenda holds that the session's cache does not."""
    held = [job.image for job in h.w.agenda.jobs if job.image is not None]
    return [image.path for image in held if h.c.cache.image(image.path, image.frame) is not image]


def test_a_budget_without_room_for_a_neighbour_reads_nothing_more_ahead():
    """One image fits beside nothing else: no neighbour is decoded or explained, on this file
    or after Page Down, and the worker holds no image the cache has no room for."""
    h = _ready(budget=IMAGE_BYTES + 2 * RESULT_BYTES)
    for to in (2, 3):
        h.user(h.c.step(1), LIST[to])
        h.drain(random.Random(to))
        h.check_final()
    assert h.c.cache.image(LIST[3]) is not None
    assert h.w.decodes == [LIST[1], LIST[2], LIST[3]]  # the user's files only
    assert all(kind != "prefetch" for kind, _ in h.w.stages)
    assert h.c.cache.nbytes <= h.c.cache.budget
    assert _held_beyond_the_cache(h) == []


def test_the_worker_keeps_no_image_the_cache_did_not_accept():
    """Room for one neighbour: once all is read, the images the worker still holds (for a
    request to come back to) are all in the cache, within its budget."""
    h = _ready(budget=2 * IMAGE_BYTES + 2 * RESULT_BYTES)
    assert h.c.cache.nbytes <= h.c.cache.budget
    assert _held_beyond_the_cache(h) == []


def test_file_open_of_a_file_read_ahead_decodes_it_anew():
    """File > Open (not from the cache) of a neighbour read ahead and explained: decoded
    again, not answered with the worker's old image."""
    h = _ready()
    assert h.w.decodes.count(LIST[2]) == 1
    h.user(h.c.open(LIST[2]), LIST[2])
    h.drain(random.Random(9))
    h.check_final()
    assert h.w.decodes.count(LIST[2]) == 2


def test_keys_pressed_while_a_folder_is_scanned_are_kept():
    """Three files, Page Down twice before the scan has listed them: the third opens, and only
    it (no file opened on the way)."""
    h = Harness()
    h.apply(h.c.load_model("demo", ""))
    h.apply(h.c.ask([Path("/data")]))
    assert _kinds(h.c.step(1)) == [] and _kinds(h.c.step(1)) == []
    effects = h.c.listed(LIST[:3], [], [])
    assert [r.path for r in effects.requests] == [LIST[2]]
    h.user(effects, LIST[2])
    h.drain(random.Random(7))
    h.check_final()


def test_the_file_shown_from_a_partial_list_stays_when_the_scan_ends():
    h = Harness()
    h.apply(h.c.load_model("demo", ""))
    h.apply(h.c.scan_started())
    first = h.c.scan_progress([LIST[1]])
    assert [r.path for r in first.requests] == [LIST[1]]
    h.user(first, LIST[1])
    h.drain(random.Random(8))
    end = h.c.listed([LIST[0], LIST[1], LIST[2]], [], [])
    assert not any(isinstance(r, OpenRequest) for r in end.requests)
    assert h.c.files.index == 1 and h.c.image.path == LIST[1]


USER = st.one_of(
    st.tuples(st.just("open"), st.integers(0, len(LIST) - 1)),
    st.tuples(st.just("step"), st.sampled_from([-1, 1, 1])),
    st.tuples(st.just("method"), st.sampled_from(METHODS)),
    st.tuples(st.just("model"), st.sampled_from(["demo", "demo", "bad"])),
    st.tuples(st.just("scan"), st.integers(0, 4)),  # a new scan; a partial list of n files
    st.tuples(st.just("more"), st.integers(1, 4)),
    st.tuples(st.just("end"), st.integers(0, 4)),
    st.tuples(st.just("pick"), st.integers(0, len(LIST) - 1)),
    st.tuples(st.just("bad"), st.just(0)),
)
# after each user action, the worker goes on: that many steps or deliveries (-1: until done)
PACE = st.sampled_from([0, 1, 2, 3, 5, 8, 13, -1])
ACTIONS = st.lists(st.tuples(USER, PACE), max_size=25)


def run(h: Harness, actions, rnd) -> None:
    c = h.c
    for (kind, arg), pace in actions:
        before = c.files.current
        moved = None
        if kind == "open":
            effects, moved = c.open_files(LIST, arg), LIST[arg]
        elif kind == "pick":
            effects, moved = c.open_listed(LIST[arg]), LIST[arg]
        elif kind == "bad":
            effects, moved = c.open(FILES[-1]), FILES[-1]
        elif kind == "step":
            effects = c.step(arg)
        elif kind == "method":
            effects = c.change_method(arg)
        elif kind == "model":
            effects = c.load_model(arg, "")
        elif kind == "scan":
            effects = c.ask([Path("/data")])
            before = c.files.current  # none: the new list has no file yet
            effects += c.scan_progress(LIST[:arg])
        elif kind == "more":
            effects = c.scan_progress(LIST[:arg])
        elif kind == "end":
            effects = c.listed(LIST[:arg], [], [])
            if not arg:  # nothing found: the list before the scan is back, nothing opens
                before = c.files.current
        if moved is None and c.files.current != before and c.files.current is not None:
            moved = c.files.current  # a step, or a scan's list, moved the position
        h.user(effects, moved)
        if pace < 0:
            h.drain(rnd)
        for _ in range(pace):
            h.step_worker(rnd)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS, st.randoms(use_true_random=False),
       st.sampled_from([None, 2 * IMAGE_BYTES + 2 * RESULT_BYTES, IMAGE_BYTES + RESULT_BYTES]),
       st.booleans())
def test_reading_ahead_never_shows_a_wrong_result_and_stays_within_the_budget(
        actions, rnd, budget, model_first):
    """User steps, scans, method and model changes, worker stages, decodes and replies in any
    interleaving: after every event what is shown is what it claims to be and the cache is
    within its budget; at rest the file the user's last action leads to is shown with its own
    heatmaps, for the model and method of the moment, and the worker holds no image beyond
    the cache. (`model_first`: a model is in before the first action.)"""
    h = Harness(budget=budget)
    h.checks += [shown_is_consistent, within_budget]
    if model_first:
        h.apply(h.c.load_model("demo", ""))
        h.drain(rnd)
    run(h, actions, rnd)
    h.drain(rnd)
    h.check_final()
    assert not h.w.busy()
    assert _held_beyond_the_cache(h) == []


@settings(max_examples=200, deadline=None)
@given(ACTIONS, st.randoms(use_true_random=False))
def test_without_reading_ahead_the_same_holds_and_nothing_is_read_ahead(actions, rnd):
    h = Harness(read_ahead=False)
    h.checks += [shown_is_consistent]
    run(h, actions, rnd)
    h.drain(rnd)
    h.check_final()
    assert all(kind != "prefetch" for kind, _ in h.w.stages)


def test_model_requests_are_not_read_ahead_work():
    h = _ready()
    effects = h.c.load_model("demo", "")
    assert _kinds(effects) == [ModelRequest]
