from pathlib import Path


class ImageLoadError(Exception):
    """A file that cannot be shown. The message names the file and says why, in plain words."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot open '{self.path.name}': {reason}")
