"""The local batch pipeline: decode in a thread pool, explain in batches, write in a pool.

Why threads: Pillow, pydicom's decoders, numpy and TensorFlow release the GIL in their heavy
parts, so on a 2-core machine the stages overlap. Results come back in input order, and at most
`max_in_flight` images are held at once (decoded, waiting for the model, or being written), so
memory stays flat over any number of images.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")  # an input
D = TypeVar("D")  # a decoded input
E = TypeVar("E")  # the model's result for one input
R = TypeVar("R")  # what writing returns


@dataclass(frozen=True)
class Done(Generic[T, R]):
    """One input's outcome: `result` from `write`, or the exception of the stage that failed."""

    index: int
    item: T
    result: R | None = None
    error: BaseException | None = None


def run_pipeline(items: Iterable[T], decode: Callable[[T], D],
                 explain: Callable[[list[D]], Sequence[E]],
                 write: Callable[[T, D, E], R], *, batch_size: int = 8,
                 decode_workers: int = 2, write_workers: int = 2,
                 max_in_flight: int | None = None) -> Iterator[Done[T, R]]:
    """Yield a `Done` for every item, in input order.

    `decode` and `write` run in thread pools, `explain` on the caller's thread with up to
    `batch_size` decoded items (in order). An exception in a stage fails only the items it
    concerns: one item for decode/write, the batch for explain.
    """
    batch_size = max(1, batch_size)
    limit = max_in_flight or 2 * batch_size + 2 * write_workers
    limit = max(limit, batch_size)
    source = enumerate(items)
    decoding: deque[tuple[int, T, Future]] = deque()
    writing: deque[list[Any]] = deque()  # [index, item, decode future, then write future]
    exhausted = False
    with ThreadPoolExecutor(decode_workers, thread_name_prefix="decode") as decoders, \
            ThreadPoolExecutor(write_workers, thread_name_prefix="write") as writers:

        def fill() -> None:
            nonlocal exhausted
            while not exhausted and len(decoding) + len(writing) < limit:
                try:
                    index, item = next(source)
                except StopIteration:
                    exhausted = True
                    return
                decoding.append((index, item, decoders.submit(decode, item)))

        def finished(index: int, item: T, future: Future) -> Done[T, R]:
            error = future.exception()
            return Done(index, item, None if error else future.result(), error)

        try:
            while True:
                fill()
                while writing and (writing[0][2].done() or len(writing) >= limit):
                    yield finished(*writing.popleft())
                if not decoding:
                    if exhausted:
                        break
                    continue
                # a slot per item, in input order, filled once its batch is explained
                batch: list[tuple[list[Any], D]] = []
                while decoding and len(batch) < batch_size:
                    index, item, future = decoding.popleft()
                    slot: list[Any] = [index, item, future]
                    writing.append(slot)
                    if future.exception() is None:  # waits for the decode
                        batch.append((slot, future.result()))
                if not batch:
                    continue
                try:
                    results = explain([decoded for _, decoded in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"explain gave {len(results)} results for "
                                           f"{len(batch)} inputs")
                except Exception as exc:  # noqa: BLE001 - the whole batch fails; the run goes on
                    for slot, _ in batch:
                        slot[2] = _failed(exc)
                    continue
                for (slot, decoded), result in zip(batch, results, strict=True):  # checked above
                    slot[2] = writers.submit(write, slot[1], decoded, result)
            while writing:
                yield finished(*writing.popleft())
        except BaseException:  # Ctrl-C, or the caller stopped: start nothing more
            decoders.shutdown(wait=False, cancel_futures=True)
            writers.shutdown(wait=False, cancel_futures=True)
            raise


def _failed(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future
