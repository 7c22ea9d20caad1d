"""Typed errors raised by the library; the CLI turns each into a one-line message and an exit code."""


def one_line(text: object) -> str:
    """Collapse a message (often a third-party error's text) onto one line for an error message."""
    return " ".join(str(text).split())


class NSTError(Exception):
    """Base of every error the toolkit raises on purpose. ``str(err)`` is a complete one-line message.

    ``param``: the config field (or fields) the message names, if any (the CLI says their flags instead).
    """

    exit_code = 1

    def __init__(self, message: str = "", param: str | tuple[str, ...] | None = None):
        super().__init__(message)
        self.param = param


class InputError(NSTError):
    """An input file or argument is missing, unreadable or out of range."""

    exit_code = 2


class ConfigError(InputError, ValueError):
    """A setting is out of range. ``param`` names the field, so the CLI can say which flag instead."""

    def __init__(self, message: str, param: str | tuple[str, ...]):
        super().__init__(message, param)


class WeightsError(NSTError):
    """Backbone weights are missing, corrupt, of the wrong shape, or cannot be obtained."""

    exit_code = 3


class OutputError(NSTError):
    """An output cannot be written (unwritable path, or it would overwrite an input)."""

    exit_code = 4


class ResourceError(NSTError):
    """The requested work does not fit the device's memory."""

    exit_code = 5


class InterruptedRun(NSTError):
    """A run stopped on request (Ctrl-C) at a step boundary. ``checkpoint``: where its state was saved (or
    None); ``partial``: the best result so far, as the front end's signal, for the caller to save."""

    exit_code = 130

    def __init__(self, message: str, *, checkpoint=None, partial=None):
        super().__init__(message)
        self.checkpoint, self.partial = checkpoint, partial


class JobsFailed(NSTError):
    """Some jobs of a batch failed (each recorded with its error); the others were done."""

    exit_code = 6
