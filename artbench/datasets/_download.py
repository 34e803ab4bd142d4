"""Shared download helper for every dataset: resumable HTTP(S)/file downloads through a temporary ``.part``
file, size and md5 checks, and streamed, safe extraction of (possibly split) tar archives.

A file only gets its final name when it is complete and verified, so a failed or partial download never leaves a
file that a later run takes for a good one.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import urllib.request
from pathlib import Path

from artbench.core.errors import ArtbenchError
from artbench.core.progress import progress_bar


def fetch(url: str, dest: Path, md5: str | None = None) -> None:
    """Download ``url`` to ``dest`` through a temporary file, with a byte progress bar.

    The file only gets its final name when it is complete: as long as the server announced (Content-Length) and,
    when ``md5`` is given, with that checksum. Anything else is deleted, so a later call fetches it again.
    """
    tmp = dest.with_name(dest.name + ".part")
    digest, received = hashlib.md5(), 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out, progress_bar() as bar:
            length = response.headers.get("Content-Length")
            task = bar.add_task(f"downloading {dest.name}", total=int(length) if length else None)
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.advance(task, len(chunk))
    except (OSError, http.client.HTTPException) as exc:
        tmp.unlink(missing_ok=True)
        raise ArtbenchError(f"cannot download {url}: {exc}; check the connection or place the file at {dest}") from None
    problem = None
    if length and received != int(length):
        problem = f"got {received} of {length} bytes"
    elif md5 and digest.hexdigest() != md5:
        problem = f"md5 {digest.hexdigest()} differs from the expected {md5}"
    if problem:
        tmp.unlink()
        raise ArtbenchError(f"download of {url} is damaged ({problem}); run the command again")
    tmp.replace(dest)


class Concatenation(io.RawIOBase):
    """The parts of a split archive read as one stream, so they never need joining on disk."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths, self._file = list(paths), None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self._paths or self._file:
            if self._file is None:
                self._file = open(self._paths.pop(0), "rb")  # noqa: SIM115 (closed when exhausted)
            n = self._file.readinto(buffer)
            if n:
                return n
            self._file.close()
            self._file = None
        return 0
