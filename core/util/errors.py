"""The one error type for bad user input: it always names the file, line and field."""

from __future__ import annotations

from typing import Optional


class InputError(ValueError):
    """Bad user input. ``str()`` is a one-line message a user can act on."""

    def __init__(
        self,
        message: str,
        file: Optional[str] = None,
        line: Optional[int] = None,
        field: Optional[str] = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        if self.field:
            where += f"field '{self.field}': "
        return where + self.message


class WeightsUnavailable(RuntimeError):
    """Model weights could not be loaded; the message says what to do instead."""


class RemoteFailure(RuntimeError):
    """A server or endpoint failed mid-run (unreachable after retries, a malformed answer).

    Finished levels and cached results are kept; the message says so and how to resume.
    """


class DiskFull(InputError):
    """A disk (or quota) filled up while writing ``file``: a one-line message naming the folder,
    shown like bad input (exit 2) because the user, not the program, has to act."""
