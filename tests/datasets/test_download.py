"""The shared download helpers: resumable ``fetch`` against a loopback HTTP server, and safe archive extraction."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from artbench.core.errors import ArtbenchError
from artbench.datasets._download import Concatenation, extract_archive, fetch

PAYLOAD = bytes(range(256)) * 4000  # 1,024,000 bytes
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class FileServer(BaseHTTPRequestHandler):
    """Serves ``files`` under three behaviours chosen by the first path component:

    ``range`` honours ``Range`` and ``If-Range`` (strong ETag = md5 of the content) while ``honour_ranges``;
    ``cut`` sends half of the body of its first response and then behaves like ``range``; ``short`` always
    announces the full length and sends half.
    """

    files: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[tuple[str, str | None]]] = []
    cut_done: ClassVar[set[str]] = set()
    honour_ranges = True

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        mode, _, name = self.path.strip("/").partition("/")
        self.requests.append((self.path, self.headers.get("Range")))
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        etag = f'"{hashlib.md5(body).hexdigest()}"'
        wanted = self.headers.get("Range")
        if mode == "cut" and name not in self.cut_done:
            self.cut_done.add(name)
            self._send(200, body, etag, len(body) // 2)
        elif (
            self.honour_ranges and mode in ("range", "cut") and wanted and self.headers.get("If-Range") in (None, etag)
        ):
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self._send(206, body[start:], etag, content_range=f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self._send(200, body, etag, len(body) // 2 if mode == "short" else None)

    def _send(self, code: int, body: bytes, etag: str, cut: int | None = None, content_range: str = "") -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        if self.honour_ranges and self.path.startswith(("/range", "/cut")):
            self.send_header("Accept-Ranges", "bytes")
        if content_range:
            self.send_header("Content-Range", content_range)
        self.end_headers()
        self.wfile.write(body[:cut])


@pytest.fixture
def server() -> Iterator[str]:
    """Base URL of a threaded HTTP server on 127.0.0.1 (any free port), stopped after the test."""
    FileServer.files = {"data.bin": PAYLOAD}
    FileServer.requests = []
    FileServer.cut_done = set()
    FileServer.honour_ranges = True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FileServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_full_download(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "data.bin"
    fetch(f"{server}/range/data.bin", dest, PAYLOAD_MD5, size=len(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == ["data.bin"]
    assert FileServer.requests == [("/range/data.bin", None)]


def test_resumes_after_a_cut(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    with pytest.raises(ArtbenchError, match=r"stopped at 512000 of 1024000 bytes; run the command again to resume"):
        fetch(f"{server}/cut/data.bin", dest, PAYLOAD_MD5)
    assert not dest.exists() and (tmp_path / "data.bin.part").stat().st_size == len(PAYLOAD) // 2
    fetch(f"{server}/cut/data.bin", dest, PAYLOAD_MD5)
    assert dest.read_bytes() == PAYLOAD
    assert FileServer.requests[-1] == ("/cut/data.bin", "bytes=512000-")
    assert _leftovers(tmp_path) == ["data.bin"]


def test_a_file_that_changed_on_the_server_is_fetched_anew(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    with pytest.raises(ArtbenchError, match="stopped at"):
        fetch(f"{server}/cut/data.bin", dest)
    changed = PAYLOAD[::-1]
    FileServer.files["data.bin"] = changed  # new ETag: If-Range fails, the server sends all of it
    fetch(f"{server}/cut/data.bin", dest, hashlib.md5(changed).hexdigest())
    assert dest.read_bytes() == changed


def test_a_server_without_range_support_restarts_cleanly(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    with pytest.raises(ArtbenchError, match="stopped at"):
        fetch(f"{server}/cut/data.bin", dest)
    FileServer.honour_ranges = False
    fetch(f"{server}/cut/data.bin", dest, PAYLOAD_MD5)  # asked for a range, got 200 and the whole file
    assert FileServer.requests[-1] == ("/cut/data.bin", "bytes=512000-")
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == ["data.bin"]


def test_a_complete_part_file_is_finished_without_new_bytes(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    with pytest.raises(ArtbenchError, match="stopped at"):
        fetch(f"{server}/cut/data.bin", dest)
    with open(tmp_path / "data.bin.part", "ab") as part:  # as if the rest had arrived before a crash
        part.write(PAYLOAD[len(PAYLOAD) // 2 :])
    fetch(f"{server}/range/data.bin", dest, PAYLOAD_MD5)  # 416 Range Not Satisfiable, bytes */1024000
    assert dest.read_bytes() == PAYLOAD


def test_a_truncated_body_never_becomes_the_file(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    for _ in range(2):  # the second try resumes, and is cut again
        with pytest.raises(ArtbenchError, match="stopped at"):
            fetch(f"{server}/short/data.bin", dest, PAYLOAD_MD5)
        assert not dest.exists()


def test_a_wrong_md5_deletes_the_download(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    with pytest.raises(ArtbenchError, match=r"is damaged \(md5 .* differs from the expected 0{32}\); run the"):
        fetch(f"{server}/range/data.bin", dest, "0" * 32)
    assert _leftovers(tmp_path) == []
    with pytest.raises(ArtbenchError, match=r"is damaged \(got 1024000 bytes, the dataset lists 5\)"):
        fetch(f"{server}/range/data.bin", dest, size=5)
    assert _leftovers(tmp_path) == []


def test_http_errors_and_file_urls(server: str, tmp_path: Path) -> None:
    with pytest.raises(ArtbenchError, match=r"cannot download .*/range/absent\.bin: HTTP 404"):
        fetch(f"{server}/range/absent.bin", tmp_path / "absent.bin")
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "copy.bin"
    (tmp_path / "copy.bin.part").write_bytes(b"stale bytes of an unknown download")
    fetch(source.as_uri(), dest, PAYLOAD_MD5)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "copy.bin.part").exists()


# --------------------------------------------------------------------------------------------------
# Safe extraction


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"content") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_tar_extraction_and_split_archives(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("img")
    folder.type = tarfile.DIRTYPE
    members = [(folder, None), _file("img/a.jpg", b"a" * 100), _file("./img/b.jpg"), _link("img/c.jpg", "a.jpg")]
    members += [_file("__MACOSX/._a.jpg"), _link("img/d.jpg", "img/a.jpg", tarfile.LNKTYPE)]
    archive = _tar(tmp_path / "img.tgz", members)
    written = extract_archive(archive, tmp_path / "out", skip=lambda name: name.startswith("__MACOSX/"))
    out = tmp_path / "out"
    assert written == 107
    assert sorted(p.name for p in (out / "img").iterdir()) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert (out / "img" / "c.jpg").is_symlink() and (out / "img" / "c.jpg").read_bytes() == b"a" * 100
    assert not (out / "__MACOSX").exists()

    blob = archive.read_bytes()  # SILKNOW ships img.tgz.parta[a-h]: read them as one stream
    parts = [tmp_path / f"img.tgz.part{i}" for i in range(3)]
    for i, part in enumerate(parts):
        part.write_bytes(blob[i * len(blob) // 3 : (i + 1) * len(blob) // 3])
    with Concatenation(parts) as stream:
        assert extract_archive(stream, tmp_path / "joined") == 114  # __MACOSX/._a.jpg included
    assert (tmp_path / "joined" / "img" / "a.jpg").read_bytes() == b"a" * 100


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_file("../evil.txt"), r"holds a path leaving its folder \('\.\./evil\.txt'\)"),
        (_file("img/../../evil.txt"), "holds a path leaving its folder"),
        (_file("/tmp/evil.txt"), r"holds an absolute path \('/tmp/evil\.txt'\)"),
        (_file("C:\\evil.txt"), "holds an absolute path"),
        (_link("img/up", "../../evil.txt"), r"holds a link pointing outside its folder \('img/up' -> '\.\./\.\./evil"),
        (_link("etc", "/etc"), "holds a link pointing outside its folder"),
        (_link("hard", "../evil.txt", tarfile.LNKTYPE), "holds a link pointing outside its folder"),
    ],
)
def test_tar_members_that_would_leave_the_folder(tmp_path: Path, member, message: str) -> None:
    archive = _tar(tmp_path / "bad.tar", [_file("ok.txt"), member], mode="w")
    with pytest.raises(ArtbenchError, match=message + r".*not extracted further"):
        extract_archive(archive, tmp_path / "stage" / "out")
    assert (tmp_path / "stage" / "out" / "ok.txt").is_file()  # members before the bad one: a staging folder's job
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "stage" / "evil.txt").exists()


def test_writing_through_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "img")  # left over from something else
    archive = _tar(tmp_path / "a.tar", [_file("img/a.jpg")], mode="w")
    with pytest.raises(ArtbenchError, match=r"writes outside its folder through a link \('img/a\.jpg'\)"):
        extract_archive(archive, out)
    assert not (tmp_path / "elsewhere" / "a.jpg").exists()


def test_device_files_size_limit_and_corrupt_archives(tmp_path: Path) -> None:
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    with pytest.raises(ArtbenchError, match="device file or fifo"):
        extract_archive(_tar(tmp_path / "dev.tar", [(device, None)], mode="w"), tmp_path / "o1")
    big = _tar(tmp_path / "big.tgz", [_file("zeros", bytes(100_000))])
    with pytest.raises(ArtbenchError, match="expands to more than its size limit"):
        extract_archive(big, tmp_path / "o2", max_bytes=50_000)
    assert extract_archive(big, tmp_path / "o3", max_bytes=100_000) == 100_000
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(big.read_bytes()[:40])
    with pytest.raises(ArtbenchError, match=r"cannot extract .*broken\.tgz.*download it again"):
        extract_archive(broken, tmp_path / "o4")


def _zip(path: Path, members: list[tuple[str, bytes]], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0x10  # S_IFLNK, as Info-ZIP stores a symbolic link
            archive.writestr(info, target)
    return path


def test_zip_extraction_and_its_unsafe_members(tmp_path: Path) -> None:
    good = _zip(tmp_path / "good.zip", [("wikiart/Baroque/a.jpg", b"x" * 10), ("__MACOSX/._a", b"")])
    assert extract_archive(good, tmp_path / "o1", skip=lambda n: n.startswith("__MACOSX/")) == 10
    assert (tmp_path / "o1" / "wikiart" / "Baroque" / "a.jpg").read_bytes() == b"x" * 10
    for name, members, links, message in [
        ("up.zip", [("../evil.txt", b"x")], None, "holds a path leaving its folder"),
        ("abs.zip", [("/evil.txt", b"x")], None, "holds an absolute path"),
        ("link.zip", [], {"img": "../../evil"}, "holds a link pointing outside its folder"),
        ("bomb.zip", [("zeros", bytes(1_000_000))], None, "expands to more than its size limit"),
    ]:
        with pytest.raises(ArtbenchError, match=message):
            extract_archive(_zip(tmp_path / name, members, links), tmp_path / name.replace(".", "-"), max_bytes=10**5)
    assert not (tmp_path / "evil.txt").exists()
