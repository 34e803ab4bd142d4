"""Files a run needs that may be absent from this machine (a dataset, pretrained weights), and the switch that keeps
the checks before a run off the network.

A check that finds such a file absent raises :class:`MissingPrerequisite`: what is missing and how to get it, and,
when artbench may fetch it itself (torchvision's ImageNet weights), the function that does. Inside :func:`offline`
(the local checks of :mod:`artbench.preflight`) nothing downloads: :func:`downloads_allowed` is False there, so the
checks report instead of fetching, and every missing file is listed at once before any network access.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from artbench.core.errors import ArtbenchError

_OFFLINE: ContextVar[bool] = ContextVar("artbench_offline", default=False)


class MissingPrerequisite(ArtbenchError):
    """A file the run needs is not on this machine; the message says what it is and how to get it."""

    def __init__(self, kind: str, message: str, fetch: Callable[[], object] | None = None, fetching: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        """What is missing, in one word: ``data`` or ``weights``."""
        self.fetch = fetch
        """Downloads it (network access), or None when the user must get it (a manual or large download)."""
        self.fetching = fetching or message
        """What ``fetch`` does, e.g. ``downloading <url> to <file>``."""


@contextmanager
def offline() -> Iterator[None]:
    """Within the block, :func:`downloads_allowed` is False: checks raise :class:`MissingPrerequisite` instead of
    downloading."""
    token = _OFFLINE.set(True)
    try:
        yield
    finally:
        _OFFLINE.reset(token)


def downloads_allowed() -> bool:
    """False inside :func:`offline`."""
    return not _OFFLINE.get()
