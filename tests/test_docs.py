"""The documents stay true to the repository: every relative link and heading anchor in README.md
and docs/*.md exists, README.md stays a short front door, every option an example passes to
`gradcam-viewer` is one its `--help` lists, and no document cites an issue number."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
COMMAND_LINE = re.compile(r"(?:^|[\s(`/])gradcam-viewer((?:\s+[^\s`]+)*)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def split_fences(text: str) -> tuple[list[str], list[str]]:
    """(prose lines, code lines) of a Markdown text; fenced blocks are code."""
    prose, code, inside = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        (code if inside else prose).append(line)
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for line in prose:
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return frozenset(found)


def links(path: Path) -> list[str]:
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    text = INLINE_CODE.sub("code", "\n".join(prose))
    return LINK.findall(text)


def broken_links(path: Path) -> list[str]:
    problems = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            problems.append(f"{target}: no heading '#{anchor}' in {dest.name}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_exist(doc):
    assert broken_links(doc) == []


def test_a_broken_link_or_anchor_is_caught(tmp_path):
    """The checker itself: a missing file, a missing heading and a good anchor."""
    (tmp_path / "other.md").write_text("# Speed: the batch pipeline\n\n## Speed: the batch "
                                       "pipeline\n```sh\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text("[a](other.md#speed-the-batch-pipeline) [b](other.md#speed-the-batch-"
                    "pipeline-1) ![c](missing.png) [d](other.md#not-a-heading) [e](#top)\n"
                    "`[not](a-link.md)`\n\n# Top\n")
    assert broken_links(page) == ["missing.png: no such file",
                                  "other.md#not-a-heading: no heading '#not-a-heading' in "
                                  "other.md"]


def test_readme_is_a_short_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES
    text = "\n".join(lines)
    assert "make run" in text and "make test" in text and "docs/screenshot.png" in text


def test_no_issue_numbers_in_documents_code_or_tests():
    """Issue numbers point at a tracker the repository does not carry."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    files = set(DOCS) | {ROOT / name for name in tracked
                         if name.endswith((".py", ".md", ".spec", ".toml", ".nsi", ".txt"))}
    this = Path(__file__).resolve()
    cited = [f"{path.relative_to(ROOT)}: {m.group(0)}" for path in sorted(files)
             if path.is_file() and path.resolve() != this
             for m in re.finditer(r"\bissues?\s*#?\d+", path.read_text(encoding="utf-8"), re.I)]
    assert cited == []


def examples() -> dict[str, set[str]]:
    """Command (or '' for the viewer) -> the options the documents' examples give it, from
    code blocks (continuation lines joined) and inline code."""
    found: dict[str, set[str]] = {}
    for doc in DOCS:
        prose, code = split_fences(doc.read_text(encoding="utf-8"))
        snippets = [m.group(0)[1:-1] for m in INLINE_CODE.finditer("\n".join(prose))]
        snippets += "\n".join(code).replace("\\\n", " ").splitlines()
        for snippet in snippets:
            snippet = snippet.split(" #")[0]  # a shell comment
            for match in COMMAND_LINE.finditer(snippet):
                words = match.group(1).split()
                command = words[0] if words and re.fullmatch(r"[a-z]+", words[0]) else ""
                found.setdefault(command, set()).update(OPTION.findall(match.group(1)))
    return found


@cache
def help_options(command: str) -> frozenset[str]:
    argv = [sys.executable, "-m", "gradcam_viewer", *([command] if command else []), "--help"]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, f"gradcam-viewer {command} --help: {done.stderr[-500:]}"
    return frozenset(OPTION.findall(done.stdout))


EXAMPLES = examples()


def test_the_documents_show_every_command():
    assert {"", "explain", "manifest", "calibrate", "sanity", "evaluate"} <= set(EXAMPLES)


@pytest.mark.parametrize("command", sorted(EXAMPLES), ids=lambda c: c or "viewer")
def test_every_option_in_an_example_exists(command):
    unknown = EXAMPLES[command] - help_options(command)
    assert unknown == set(), f"gradcam-viewer {command}: {sorted(unknown)} not in its --help"
