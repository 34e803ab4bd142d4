"""Shared download helpers for every dataset: resumable HTTP(S)/file downloads through a temporary ``.part``
file with length and md5 checks, split archives read as one stream, and safe extraction of tar and zip archives.

A file only gets its final name when it is complete and verified, so a failed or partial download never leaves a
file that a later run takes for a good one. An interrupted download keeps its ``.part`` file and the next call
resumes it with an HTTP ``Range`` request (RFC 9110 §14) when the server answers ``206 Partial Content``, guarded
by ``If-Range`` with the validator (ETag or Last-Modified) of the first response, so a file that changed on the
server is fetched anew instead of being spliced; a server without range support sends the whole file again.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from artbench.core.errors import ArtbenchError
from artbench.core.progress import progress_bar

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60
MAX_EXTRACTED_BYTES = 200 * 2**30
"""Default ceiling on what one archive may expand to (the largest supported dataset, WikiArt, is about 26 GB)."""


class _Restart(Exception):
    """The ``.part`` file cannot be continued: download from the first byte."""


def fetch(url: str, dest: Path, md5: str | None = None, *, size: int | None = None) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``, with a byte progress bar, resuming an earlier ``.part``.

    ``dest`` only gets its final name when the file is complete: as long as the server announced (and ``size``
    when given) and, when ``md5`` is given, with that checksum. A connection that breaks off keeps the ``.part``
    file for the next call to resume; a file of the wrong length or checksum is deleted.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    state = dest.with_name(dest.name + ".part.json")
    try:
        try:
            total = _transfer(url, part, state, resume=True)
        except _Restart:
            total = _transfer(url, part, state, resume=False)
    except (OSError, http.client.HTTPException) as exc:
        kept = part.stat().st_size if part.is_file() else 0
        resume = f"; run the command again to resume from byte {kept}" if kept else "; check the connection"
        raise ArtbenchError(f"cannot download {url}: {_reason(exc)}{resume} (or place the file at {dest})") from None
    received = part.stat().st_size
    expected = total if total is not None else size
    if expected is not None and received < expected:
        raise ArtbenchError(
            f"download of {url} stopped at {received} of {expected} bytes; run the command again to resume"
        )
    problem = None
    if expected is not None and received > expected:
        problem = f"got {received} bytes, expected {expected}"
    elif size is not None and received != size:
        problem = f"got {received} bytes, the dataset lists {size}"
    elif md5 and (found := _md5(part)) != md5.lower():
        problem = f"md5 {found} differs from the expected {md5}"
    if problem:
        part.unlink()
        state.unlink(missing_ok=True)
        raise ArtbenchError(f"download of {url} is damaged ({problem}); run the command again")
    part.replace(dest)
    state.unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _resume_offset(url: str, part: Path, state: Path) -> tuple[int, str | None]:
    """Bytes already in ``part`` for this ``url`` and the validator to send as ``If-Range`` (0 = start over)."""
    if not part.is_file():
        return 0, None
    try:
        saved = json.loads(state.read_text())
    except (OSError, ValueError):
        return 0, None
    if saved.get("url") != url:
        return 0, None
    return part.stat().st_size, saved.get("validator")


def _transfer(url: str, part: Path, state: Path, *, resume: bool) -> int | None:
    """Append the rest of ``url`` to ``part`` (all of it when not resuming); return the file's announced size."""
    offset, validator = _resume_offset(url, part, state) if resume else (0, None)
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        if validator:
            request.add_header("If-Range", validator)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if offset and exc.code == 416:  # nothing left to send: complete already, or longer than the file
            total = _content_range_total(exc.headers.get("Content-Range"))
            if total == offset:
                return total
            raise _Restart from None
        raise
    with response:
        status = getattr(response, "status", None)
        length = response.headers.get("Content-Length")
        if offset and status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise _Restart
            mode = "ab"
        elif offset:  # the server ignored the range (200) or the file changed (If-Range): start over
            offset, mode = 0, "wb"
            total = int(length) if length else None
        else:
            mode = "wb"
            total = int(length) if length else None
        if mode == "wb":
            state.write_text(json.dumps({"url": url, "validator": _validator(response.headers)}))
        with open(part, mode) as out, progress_bar() as bar:
            task = bar.add_task(f"downloading {part.name.removesuffix('.part')}", total=total, completed=offset)
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                bar.advance(task, len(chunk))
    return total


def _validator(headers) -> str | None:
    """A strong ETag, else Last-Modified: what ``If-Range`` may carry (RFC 9110 §13.1.5)."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, complete length) of ``bytes first-last/length``; None where absent or ``*``."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if not match:
        return None, None
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


def _content_range_total(value: str | None) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", value or "")
    return int(match.group(1)) if match else None


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


# --------------------------------------------------------------------------------------------------
# Safe extraction


class _Unsafe(Exception):
    """An archive member that would write outside the extraction folder, or too much."""


def extract_archive(
    source: Path | BinaryIO,
    dest: Path,
    *,
    max_bytes: int = MAX_EXTRACTED_BYTES,
    skip: Callable[[str], bool] | None = None,
) -> int:
    """Extract a tar (any compression; a path, or a stream such as :class:`Concatenation`) or zip archive (a path)
    into ``dest``; return the bytes written.

    Refused, before anything is written for that member: absolute names, ``..`` components, links whose target
    lies outside ``dest``, device files and fifos, and more than ``max_bytes`` in all. File modes from the archive
    are not applied. ``skip(name)`` leaves members out (e.g. macOS ``__MACOSX/`` folders). Extract into a staging
    folder and rename it when this returns: an archive refused halfway leaves what came before it.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    label = repr(str(source)) if isinstance(source, (str, Path)) else "the archive"
    try:
        if isinstance(source, (str, Path)) and zipfile.is_zipfile(source):
            return _extract_zip(Path(source), dest, max_bytes, skip)
        with (
            tarfile.open(source, "r:*")
            if isinstance(source, (str, Path))
            else tarfile.open(fileobj=source, mode="r|*") as tar
        ):
            return _extract_tar(tar, dest, max_bytes, skip)
    except _Unsafe as exc:
        raise ArtbenchError(f"{label} {exc}; not extracted further (delete it and download again)") from None
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ArtbenchError(
            f"cannot extract {label} ({type(exc).__name__}: {exc}); check the free disk space, or delete it and "
            "download it again"
        ) from None


def _member_path(dest: Path, name: str) -> Path | None:
    """Where member ``name`` goes under ``dest`` (None for the archive's root itself); raises on unsafe names."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise _Unsafe(f"holds an absolute path ({name!r})")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Unsafe(f"holds a path leaving its folder ({name!r})")
    return dest.joinpath(*parts) if parts else None


def _inside(dest: Path, path: str | Path) -> bool:
    root = os.path.realpath(dest)
    return os.path.realpath(path).startswith(root + os.sep)


def _checked(dest: Path, target: Path) -> Path:
    """``target``, after checking that no link (extracted earlier) leads it out of ``dest``."""
    if not _inside(dest, target):
        raise _Unsafe(f"writes outside its folder through a link ({str(target.relative_to(dest))!r})")
    return target


def _writable(dest: Path, target: Path) -> Path:
    """``target`` checked, with its folders made and without an earlier member of that name."""
    _checked(dest, target).parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target) and not target.is_dir():
        target.unlink()  # a later member replaces an earlier one, never writes through it
    return target


def _copy(stream: BinaryIO, target: Path, budget: list[int]) -> None:
    with open(target, "wb") as out:
        while chunk := stream.read(CHUNK_BYTES):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise _Unsafe("expands to more than its size limit")
            out.write(chunk)


def _extract_tar(tar: tarfile.TarFile, dest: Path, max_bytes: int, skip: Callable[[str], bool] | None) -> int:
    budget = [max_bytes]
    for member in tar:
        if skip and skip(member.name):
            continue
        target = _member_path(dest, member.name)
        if target is None:
            continue
        if member.isdir():
            _checked(dest, target).mkdir(parents=True, exist_ok=True)
            continue
        if member.issym() or member.islnk():
            base = target.parent if member.issym() else dest
            if member.linkname.startswith(("/", "\\")) or not _inside(dest, base / member.linkname):
                raise _Unsafe(f"holds a link pointing outside its folder ({member.name!r} -> {member.linkname!r})")
            _writable(dest, target)
            if member.issym():
                os.symlink(member.linkname, target)
            else:
                os.link(base / member.linkname, target)
            continue
        if not member.isfile():
            raise _Unsafe(f"holds a device file or fifo ({member.name!r})")
        if member.size > budget[0]:
            raise _Unsafe("expands to more than its size limit")
        stream = tar.extractfile(member)
        assert stream is not None  # a regular file
        _copy(stream, _writable(dest, target), budget)
    return max_bytes - budget[0]


def _open_zip(path: Path) -> zipfile.ZipFile:
    """Names without the zip's UTF-8 flag are read as UTF-8 (as written on Linux), else as the standard's cp437."""
    try:
        return zipfile.ZipFile(path, metadata_encoding="utf-8")
    except UnicodeDecodeError:
        return zipfile.ZipFile(path)


def _extract_zip(path: Path, dest: Path, max_bytes: int, skip: Callable[[str], bool] | None) -> int:
    budget = [max_bytes]
    with _open_zip(path) as archive:
        members = [m for m in archive.infolist() if not (skip and skip(m.filename))]
        if sum(m.file_size for m in members) > max_bytes:
            raise _Unsafe("expands to more than its size limit")
        for member in members:
            target = _member_path(dest, member.filename)
            if target is None:
                continue
            if member.is_dir():
                _checked(dest, target).mkdir(parents=True, exist_ok=True)
                continue
            if stat.S_ISLNK(member.external_attr >> 16):  # a symbolic link stored by Info-ZIP
                link = archive.read(member).decode("utf-8")
                if link.startswith(("/", "\\")) or not _inside(dest, target.parent / link):
                    raise _Unsafe(f"holds a link pointing outside its folder ({member.filename!r} -> {link!r})")
                os.symlink(link, _writable(dest, target))
                continue
            with archive.open(member) as stream:
                _copy(stream, _writable(dest, target), budget)
    return max_bytes - budget[0]
