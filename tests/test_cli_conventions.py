"""What every command shares and a user relies on: `--help` lists every command in one line
each, one exit-code table (in every command's help, each code one meaning), `--overlays` with
`--labels` as a deprecated alias, TensorFlow's start-up lines kept off stderr, tqdm progress."""

import ast
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gradcam_viewer.cli import COMMANDS, main
from gradcam_viewer.cli.common import EXIT_CODES_HELP, ExitCode, Progress
from gradcam_viewer.resources import samples_dir

PNG = samples_dir() / "phantom_03_nodule.png"
CLI = Path(__file__).resolve().parents[1] / "gradcam_viewer" / "cli"


def _help(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_help_lists_every_command_in_one_line(capsys):
    text = _help(capsys, [])
    block = text.split("commands (")[1].split("\n\n")[0].splitlines()[1:]
    listed = {}
    for line in block:
        name, summary = line.split(None, 1)
        listed[name] = summary
        assert len(line) <= 79, line
    assert list(listed) == list(COMMANDS)
    for name, command in COMMANDS.items():
        assert listed[name] == command.summary


def test_every_command_help_ends_with_the_one_exit_code_table(capsys):
    codes = [int(m) for m in re.findall(r"^  (\d+) ", EXIT_CODES_HELP, re.MULTILINE)]
    assert sorted(codes) == sorted(c.value for c in ExitCode)  # each code once, all of them
    assert _help(capsys, []).rstrip().endswith(EXIT_CODES_HELP)
    for name in COMMANDS:
        assert _help(capsys, [name]).rstrip().endswith(EXIT_CODES_HELP), name


def test_commands_return_codes_from_the_table_only():
    """A bare number in a command is a code the table may not say."""
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant):
                assert not isinstance(node.value.value, int), f"{path.name}:{node.lineno}"


def test_an_unexpected_error_exits_3_and_names_the_log(monkeypatch, tmp_path, capsys):
    from gradcam_viewer.cli import explain

    def broken(settings):
        raise RuntimeError("a bug")

    monkeypatch.setattr(explain, "load", broken)
    assert main(["explain", str(PNG), "--out", str(tmp_path / "o")]) == ExitCode.INTERNAL == 3
    err = capsys.readouterr().err
    assert "unexpected error (RuntimeError)" in err and "Traceback" not in err


def test_sanity_weights_changing_is_a_bug_not_a_check_result(monkeypatch, tmp_path, capsys):
    """The model's weights changing during the check can only be a bug of the program: it
    exits with the unexpected-error code and says so, never with a check's code."""
    from gradcam_viewer.trust import sanity

    real = sanity.cascading_randomisation

    def changing(*args, **kwargs):
        result = real(*args, **kwargs)
        result.weights_unchanged = False
        return result

    monkeypatch.setattr(sanity, "cascading_randomisation", changing)
    code = main(["sanity", str(PNG), "--steps", "1", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == ExitCode.INTERNAL and "weights changed" in err and "bug" in err


def test_overlays_names_the_overlays_and_labels_is_a_deprecated_alias(tmp_path, capsys):
    assert main(["explain", str(PNG), "--out", str(tmp_path / "a"), "--overlays", "Nodule"]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert main(["explain", str(PNG), "--out", str(tmp_path / "b"), "--labels", "Nodule"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "deprecated" in line]
    assert len(warned) == 1 and "--overlays" in warned[0] and warned[0].startswith("warning:")
    for out in ("a", "b"):
        assert sorted(p.name for p in (tmp_path / out).iterdir()) == [
            "phantom_03_nodule.json", "phantom_03_nodule_Nodule.png", "predictions.csv"]
    text = _help(capsys, ["explain"])
    assert "--overlays" in text and "--labels" not in text


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "gradcam_viewer", *args], env=environ,
                          capture_output=True, text=True, timeout=300)


NOISE = re.compile(r"oneDNN|cpu_feature_guard|absl|port\.cc")


@pytest.mark.slow
def test_tensorflow_start_up_lines_stay_off_stderr(tmp_path):
    args = ["explain", str(PNG), "--overlays", "none", "--out"]
    quiet = _run([*args, str(tmp_path / "q")])
    assert quiet.returncode == 0, quiet.stderr
    assert not NOISE.search(quiet.stderr), quiet.stderr
    assert quiet.stderr.splitlines() == [
        f"1 images explained, 0 other files skipped (outputs in {tmp_path / 'q'})"]
    # the lines are there to hide: --verbose shows them, and so does a level the user set
    verbose = _run([*args, str(tmp_path / "v"), "--verbose"])
    assert verbose.returncode == 0 and NOISE.search(verbose.stderr), verbose.stderr
    chosen = _run([*args, str(tmp_path / "u")], TF_CPP_MIN_LOG_LEVEL="0")
    assert chosen.returncode == 0 and NOISE.search(chosen.stderr), chosen.stderr


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_tqdm_bar_on_a_terminal_and_silent_elsewhere():
    screen = Terminal()
    with Progress(3, screen) as progress:
        progress.step("a.png")
        progress.say("error: cannot open 'b.png'")
        progress.step("b.png")
        progress.step("c.png")
    text = screen.getvalue()
    assert "100%" in text and "3/3" in text and "c.png" in text  # tqdm's bar, completed
    assert "error: cannot open 'b.png'\n" in text  # a message keeps a line of its own
    piped = io.StringIO()
    with Progress(3, piped) as progress:
        progress.step("a.png")
        progress.say("error: cannot open 'b.png'")
        progress.step("b.png")
    assert piped.getvalue() == "error: cannot open 'b.png'\n"
