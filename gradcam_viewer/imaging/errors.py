from pathlib import Path


class ImageLoadError(Exception):
    """A file that cannot be shown. The message names the file and says why, in plain words.

    `unexpected` is True when the reason is not a known kind of bad input but an exception the
    loader did not foresee (a bug or a library surprise): the user still gets a clear message,
    the details go to the log, and the fuzz tests assert this path is never taken.
    """

    def __init__(self, path: str | Path, reason: str, unexpected: bool = False):
        self.path = Path(path)
        self.reason = reason
        self.unexpected = unexpected
        super().__init__(f"Cannot open '{self.path.name}': {reason}")


def raised_in(exc: BaseException, package: str) -> bool:
    """The exception was raised inside `package` (a decoder refusing damaged data)."""
    tb = exc.__traceback__
    name = ""
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    return name == package or name.startswith(package + ".")


def short_reason(exc: BaseException) -> str:
    """The first line of an exception's message for the user; pydicom's "... all available
    plugins:" is followed by the first plugin's reason."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return text[:200]
