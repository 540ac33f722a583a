"""The runtime's error family: everything it raises on purpose derives from :class:`LprError`.

The CLIs catch this family (and the documented I/O errors) and print one line naming the file,
line or frame; anything else is a bug and shows its traceback. The toolchain's stages derive their
own errors from :class:`LprError` too, so one ``except LprError`` covers every package.

Each class also derives from the builtin it used to be (``ValueError`` for bad input,
``RuntimeError`` for a model or backend that cannot run), so callers that catch the builtin keep
working.
"""

from __future__ import annotations


class LprError(Exception):
    """Base of every error the LPR packages raise on purpose."""


class InputError(LprError, ValueError):
    """A value given by the user or read from a file is not valid (the message names it)."""


class ImageError(LprError, ValueError):
    """An image that cannot be read; the message names the file."""


class SourceError(LprError, ValueError):
    """A source that names nothing readable (no such file, empty folder, glob without matches)."""


class StreamLostError(SourceError):
    """A live source that went down and did not come back within the reconnect attempts."""


class ModelMetadataError(LprError, ValueError):
    """A model file lacks, or has malformed, metadata the runtime needs."""


class RulesError(LprError, ValueError):
    """A region rules file is missing or malformed (the message names it)."""


class ZooError(LprError, RuntimeError):
    """A zoo or model that cannot be used; the message names the path and what is wrong."""


class BackendError(LprError, RuntimeError):
    """A backend that cannot run (missing package, unusable model); the message says why."""
