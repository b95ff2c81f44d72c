"""gradcam-viewer:// links: how a worklist (RIS, PACS, a web page) asks the viewer to open a
study.

    gradcam-viewer://open?node=NAME&studyUID=UID
    gradcam-viewer://open?node=NAME&accession=AN[&patientID=ID]

A link may only name a configured node and a study; it can never name a path, a host, a port or
anything to run. The parser is strict because anyone (a web page, an e-mail) can make a link:
one spelling of the scheme and of `open`, no user, port, path or fragment, the four parameters
each at most once and nothing else, percent-encoding decoded once (as UTF-8) and the values then
checked as `StudyRequest` checks them. The user is asked before a link is followed
(ui/launcher.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import quote, unquote, unquote_plus, urlsplit

from gradcam_viewer.launch.requests import RequestError, StudyRequest

SCHEME = "gradcam-viewer"
MAX_LINK = 2048  # longer than any link the four parameters make, far below what hurts
PARAMETERS = {"node": "node", "studyuid": "study_uid", "accession": "accession",
              "patientid": "patient_id"}  # lower-cased name -> StudyRequest field
_URI_CHARACTERS = re.compile(r"[\x21-\x7e]+")  # printable ASCII without space (RFC 3986)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class LinkError(ValueError):
    """A link that is not one this viewer follows; the message says why, for the user."""


def is_link(argument: str) -> bool:
    """Whether a command-line argument is a gradcam-viewer: link (not a file name)."""
    return argument[:len(SCHEME) + 1].lower() == f"{SCHEME}:"


def parse_link(text: str) -> StudyRequest:
    if len(text) > MAX_LINK:
        raise LinkError(f"the link is longer than {MAX_LINK} characters")
    if not _URI_CHARACTERS.fullmatch(text):
        raise LinkError("the link holds spaces, control or non-ASCII characters "
                        "(they must be percent-encoded)")
    if "#" in text:
        raise LinkError("the link has a fragment (#...)")
    parts = urlsplit(text)
    if parts.scheme.lower() != SCHEME:
        raise LinkError(f"the link does not start with {SCHEME}://")
    if parts.netloc.lower() != "open":
        raise LinkError(f"the link must start with {SCHEME}://open? (it names no host, user "
                        "or port)")
    if parts.path not in ("", "/"):
        raise LinkError("the link has a path: it may only name a node and a study")
    fields = _parameters(parts.query)
    if "node" not in fields:
        raise LinkError("the link names no node (node=...)")
    try:
        return StudyRequest(**fields)
    except RequestError as exc:
        raise LinkError(str(exc)) from None


def _parameters(query: str) -> dict[str, str]:
    if not query:
        raise LinkError("the link names no study (…?node=NAME&studyUID=UID)")
    if _BAD_ESCAPE.search(query):
        raise LinkError("the link has a '%' that is not followed by two hexadecimal digits")
    fields: dict[str, str] = {}
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        field = PARAMETERS.get(name.lower())
        if field is None:
            raise LinkError(f"the link has a parameter this viewer does not take "
                            f"({name[:40]!r}); it takes node, studyUID, accession, patientID")
        if not equals:
            raise LinkError(f"the link's {name} has no value")
        if field in fields:
            raise LinkError(f"the link gives {name} twice")
        try:
            fields[field] = unquote_plus(value, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise LinkError(f"the link's {name} is not percent-encoded UTF-8") from None
    return fields


def make_link(study: StudyRequest) -> str:
    """The link that names `study` (what a worklist writes; `parse_link` reads it back)."""
    pairs = [("node", study.node), ("studyUID", study.study_uid),
             ("accession", study.accession), ("patientID", study.patient_id)]
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs if value)
    return f"{SCHEME}://open?{query}"


def file_url_path(argument: str) -> Path | None:
    """The local path of a file:// URL (what a desktop passes for `%U`), else None."""
    if argument[:5].lower() != "file:":
        return None
    parts = urlsplit(argument)
    if parts.netloc.lower() not in ("", "localhost") or not parts.path:
        return None
    if sys.platform == "win32":
        from nturl2path import url2pathname

        return Path(url2pathname(parts.path))
    return Path(unquote(parts.path, errors="surrogateescape"))  # as os.fsdecode reads bytes
