"""User-facing errors: the message is a sentence that names the file or value and what to do."""


class WorkbenchError(Exception):
    """An error whose message is meant for the user as it is (no traceback needed)."""


class PathNotAllowed(WorkbenchError):
    """A path from a workflow or an HTTP request lies outside the configured roots."""


class ValidationError(WorkbenchError):
    """Input that would make a run fail or lose data; raised before anything is changed."""
