"""Compositor failures.

Tree::

    CompositorError
    ├── PermanentError          bad input: the composition fails and is not retried
    │   ├── LayoutError         invalid VideoLayout or Resolution (carries a Twilio-style code)
    │   ├── NoSourcesError      sources and exclusions resolved to nothing (53630)
    │   └── MediaError          a source cannot be opened or decoded, or the output cannot be written
    └── TransientError          a dependency is temporarily unavailable; retry later
"""

from __future__ import annotations

from libs.composition.spec import LayoutError as SpecError

# Error codes. 53630 and 53626 are Twilio's; 53640/53641 are ours (Twilio documents no create-time code for a
# malformed layout or resolution), see docs/compositions.md.
CODE_INTERNAL = 53626
CODE_NO_SOURCES = 53630


class CompositorError(Exception):
    """Base of every compositor failure; `code` is the Twilio-style error code."""

    code: int = CODE_INTERNAL

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class PermanentError(CompositorError):
    """Bad input: retrying cannot help."""


class TransientError(CompositorError):
    """A dependency failed temporarily: retrying may help."""


class LayoutError(PermanentError, SpecError):
    """An invalid VideoLayout or Resolution (also a libs.composition.spec.LayoutError, which the shared
    parsers raise and ``from_spec_error`` converts)."""

    def __init__(self, code: int, message: str) -> None:
        Exception.__init__(self, message)  # both bases keep the same two fields; set them once
        self.code = code
        self.message = message


def from_spec_error(exc: SpecError) -> LayoutError:
    """The engine's permanent LayoutError for an error of the shared request parsers."""
    return LayoutError(exc.code, exc.message)


class NoSourcesError(PermanentError):
    """The selected sources resolved to an empty track list."""

    code = CODE_NO_SOURCES


class MediaError(PermanentError):
    """A source could not be read or decoded, or the output could not be written."""
