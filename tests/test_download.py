"""Downloads: mirrors, resume with Range, checksums, atomic extraction — against a loopback server."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from snnkit.data.download import extract, fetch, parse_checksum, verify
from snnkit.errors import DataError

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB


class Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    cut_after: int | None = None  # close the connection after this many bytes (once)
    ranges_seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:  # http.server's name
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            Handler.ranges_seen.append(rng)
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if Handler.cut_after is not None:
            chunk, Handler.cut_after = chunk[: Handler.cut_after], None
        self.wfile.write(chunk)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.files, Handler.cut_after, Handler.ranges_seen = {}, None, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_checksum_forms() -> None:
    assert parse_checksum("md5:" + "a" * 32) == ("md5", "a" * 32)
    assert parse_checksum("B" * 64) == ("sha256", "b" * 64)
    with pytest.raises(ValueError, match="checksum"):
        parse_checksum("crc32:1234")


def test_fetch_verifies_and_renames_atomically(server: str, tmp_path: Path) -> None:
    Handler.files["/a.bin"] = PAYLOAD
    seen: list[int] = []
    got = fetch(
        [f"{server}/a.bin"],
        tmp_path / "a.bin",
        sha(PAYLOAD),
        progress=lambda n, total: seen.append(n),
    )
    assert got.read_bytes() == PAYLOAD and seen[-1] == len(PAYLOAD)
    assert not (tmp_path / "a.bin.part").exists()


def test_interrupted_download_resumes_with_range(server: str, tmp_path: Path) -> None:
    Handler.files["/a.bin"] = PAYLOAD
    Handler.cut_after = 300_000
    with pytest.raises(DataError, match="could not be downloaded"):
        fetch([f"{server}/a.bin"], tmp_path / "a.bin", sha(PAYLOAD))
    part = tmp_path / "a.bin.part"
    assert part.stat().st_size == 300_000 and not (tmp_path / "a.bin").exists()
    fetch([f"{server}/a.bin"], tmp_path / "a.bin", sha(PAYLOAD))
    assert Handler.ranges_seen == ["bytes=300000-"]
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_dead_mirror_and_bad_checksum_fall_through_to_the_next(server: str, tmp_path: Path) -> None:
    Handler.files["/bad.bin"] = b"not it"
    Handler.files["/good.bin"] = PAYLOAD
    urls = [f"{server}/missing.bin", f"{server}/bad.bin", f"{server}/good.bin"]
    assert fetch(urls, tmp_path / "x.bin", sha(PAYLOAD)).read_bytes() == PAYLOAD


def test_every_mirror_failing_is_one_data_error(server: str, tmp_path: Path) -> None:
    Handler.files["/bad.bin"] = b"not it"
    with pytest.raises(DataError) as err:
        fetch([f"{server}/missing.bin", f"{server}/bad.bin"], tmp_path / "x.bin", sha(PAYLOAD))
    text = str(err.value)
    assert "HTTP 404" in text and "checksum" in text and str(tmp_path) in text
    assert "\n" not in text and not list(tmp_path.iterdir())


def test_existing_verified_file_is_not_downloaded_again(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(PAYLOAD)
    assert fetch(["http://127.0.0.1:9/never"], tmp_path / "a.bin", sha(PAYLOAD))
    assert verify(tmp_path / "a.bin", sha(PAYLOAD))
    assert not verify(tmp_path / "a.bin", sha(b"other"))


def make_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def test_extract_zip_and_tar(tmp_path: Path) -> None:
    make_zip(tmp_path / "Train.zip", {"Train/0/00002.bin": b"12345", "Train/1/00003.bin": b""})
    out = extract(tmp_path / "Train.zip", tmp_path / "NMNIST" / "extracted")
    assert (out / "Train/0/00002.bin").read_bytes() == b"12345"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("DvsGesture/trials_to_train.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"a.txt"))
    (tmp_path / "g.tar.gz").write_bytes(buf.getvalue())
    assert (
        extract(tmp_path / "g.tar.gz", tmp_path / "g") / "DvsGesture/trials_to_train.txt"
    ).read_bytes() == b"a.txt"


def test_half_written_archive_leaves_nothing_behind(tmp_path: Path) -> None:
    make_zip(tmp_path / "Test.zip", {f"Test/{i}.bin": bytes(5000) for i in range(20)})
    data = (tmp_path / "Test.zip").read_bytes()
    (tmp_path / "Test.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="Test.zip: .*fetch it again"):
        extract(tmp_path / "Test.zip", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Test.zip"]


def test_members_escaping_the_folder_are_refused(tmp_path: Path) -> None:
    make_zip(tmp_path / "evil.zip", {"../../etc/x": b"no"})
    with pytest.raises(DataError, match="outside the data folder"):
        extract(tmp_path / "evil.zip", tmp_path / "out")
