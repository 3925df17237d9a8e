"""User-facing errors: the message is a sentence that names the file or value and what to do."""


class WorkbenchError(Exception):
    """An error whose message is meant for the user as it is (no traceback needed)."""


class PathNotAllowed(WorkbenchError):
    """A path from a workflow or an HTTP request lies outside the configured roots."""


class ValidationError(WorkbenchError):
    """Input that would make a run fail or lose data; raised before anything is changed."""


class DiskFull(WorkbenchError, OSError):
    """A write failed because the disk (or the user's quota) is full; the sentence names the file, the
    free space and what to do. Still an OSError (with the errno) for code that handles those."""

    def __init__(self, message: str, errno_value: int | None = None, filename: str | None = None):
        super().__init__(message)
        self.errno, self.filename = errno_value, filename

    def __str__(self) -> str:
        return str(self.args[0])
