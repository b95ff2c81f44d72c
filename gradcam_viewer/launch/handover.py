"""The message a second `gradcam-viewer` hands the running viewer, and its reply.

One line of JSON each way. The request carries the second process's arguments as typed and its
working folder (relative paths are resolved against the sender's folder, not the viewer's):

    {"version": 1, "argv": ["scan.dcm"], "cwd": "/home/reader"}

and the viewer answers `{"version": 1, "accepted": true}` (or false, with a `reason`). Anything
else (not UTF-8 JSON, another version, a missing or extra key, a value of the wrong type, a NUL
character, a relative folder, more than MAX_MESSAGE bytes) is refused whole by `read_request`:
the viewer logs it and carries out nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

VERSION = 1
MAX_MESSAGE = 1 << 20  # bytes; far more than any command line
MAX_ARGUMENTS = 4096


class MessageError(ValueError):
    """A message that is not a request (or reply) of this version; says what is wrong."""


@dataclass(frozen=True)
class Handover:
    argv: tuple[str, ...]  # the second process's arguments, without the program name
    cwd: str  # its working folder (absolute)


@dataclass(frozen=True)
class Reply:
    accepted: bool
    reason: str = ""  # why not, for the second process to print


def write_request(handover: Handover) -> bytes:
    return _line({"version": VERSION, "argv": list(handover.argv), "cwd": handover.cwd})


def read_request(data: bytes) -> Handover:
    message = _object(data, {"version", "argv", "cwd"})
    argv, cwd = message["argv"], message["cwd"]
    if not isinstance(argv, list) or len(argv) > MAX_ARGUMENTS or not all(
            isinstance(a, str) for a in argv):
        raise MessageError("argv is not a list of strings")
    if not isinstance(cwd, str) or not Path(cwd).is_absolute():
        raise MessageError("cwd is not an absolute folder")
    if any("\0" in text for text in [*argv, cwd]):
        raise MessageError("a NUL character in argv or cwd")
    return Handover(tuple(argv), cwd)


def write_reply(reply: Reply) -> bytes:
    return _line({"version": VERSION, "accepted": reply.accepted, "reason": reply.reason})


def read_reply(data: bytes) -> Reply:
    message = _object(data, {"version", "accepted", "reason"})
    accepted, reason = message["accepted"], message["reason"]
    if not isinstance(accepted, bool) or not isinstance(reason, str):
        raise MessageError("accepted is not true/false or reason is not a string")
    return Reply(accepted, reason)


def _line(message: dict[str, object]) -> bytes:
    # ASCII (non-ASCII and the surrogates of undecodable file names as \u escapes), one line
    return json.dumps(message, ensure_ascii=True).encode("ascii") + b"\n"


def _object(data: bytes, keys: set[str]) -> dict[str, object]:
    if len(data) > MAX_MESSAGE:
        raise MessageError(f"longer than {MAX_MESSAGE} bytes")
    try:
        message = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, too deeply nested
        raise MessageError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(message, dict):
        raise MessageError("not a JSON object")
    version = message.get("version")
    if type(version) is not int or version != VERSION:  # (True == 1, but is no version)
        raise MessageError(f"version {str(version)[:20]!r}, not {VERSION}")
    if set(message) != keys:
        raise MessageError(f"keys {sorted(message)[:10]}, not {sorted(keys)}")
    return message
