"""Writers of event files in the official byte layouts, shared by the event-data tests."""

from __future__ import annotations

import gzip
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from snnkit.data.event_formats import AEDAT3_HEADER_END

RNG = np.random.default_rng(7)


def known_events(
    n: int, w: int, h: int, t_max: int, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    rng = RNG if rng is None else rng
    return {
        "t": np.sort(rng.integers(0, t_max, n)),
        "x": rng.integers(0, w, n),
        "y": rng.integers(0, h, n),
        "p": rng.integers(0, 2, n),
    }


def assert_events(got: np.ndarray, want: dict[str, np.ndarray]) -> None:
    for k in ("t", "x", "y", "p"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def nmnist_bytes(ev: dict[str, np.ndarray]) -> bytes:
    out = bytearray()
    for t, x, y, p in zip(ev["t"], ev["x"], ev["y"], ev["p"], strict=True):
        t = int(t)
        out += bytes([int(x), int(y), (int(p) << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def aedat3_bytes(packets: list[tuple[int, int, bytes, int]]) -> bytes:
    """Header + packets ``(type, overflow, body, event_size)``."""
    out = bytearray(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n" + AEDAT3_HEADER_END)
    for typ, overflow, body, size in packets:
        number = len(body) // size
        out += struct.pack("<hhiiiiii", typ, 1, size, 4, overflow, number, number, number)
        out += body
    return bytes(out)


def polarity_body(ev: dict[str, np.ndarray], valid: np.ndarray | None = None) -> bytes:
    valid = np.ones(len(ev["t"]), bool) if valid is None else valid
    data = (
        (ev["x"].astype(np.uint32) << 17)
        | (ev["y"].astype(np.uint32) << 2)
        | (ev["p"].astype(np.uint32) << 1)
        | valid.astype(np.uint32)
    )
    rec = np.empty(len(data), dtype=[("d", "<u4"), ("t", "<i4")])
    rec["d"], rec["t"] = data, ev["t"]
    return rec.tobytes()


def aedat2_bytes(ev: dict[str, np.ndarray]) -> bytes:
    addr = ((127 - ev["x"]) << 1) | (ev["y"] << 8) | ev["p"]
    rec = np.empty(len(addr), dtype=[("a", ">u4"), ("t", ">u4")])
    rec["a"], rec["t"] = addr, ev["t"]
    return b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n" + rec.tobytes()


def write_shd(path, samples, labels, *, drop: str | None = None) -> None:  # type: ignore[no-untyped-def]
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        vf = h5py.vlen_dtype(np.dtype("float32"))
        vu = h5py.vlen_dtype(np.dtype("uint16"))
        if drop != "spikes/times":
            t = f.create_dataset("spikes/times", (len(samples),), dtype=vf)
            for i, (times, _) in enumerate(samples):
                t[i] = times
        u = f.create_dataset("spikes/units", (len(samples),), dtype=vu)
        for i, (_, units) in enumerate(samples):
            u[i] = units
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def gzip_file(src: Path, dst: Path) -> Path:
    dst.write_bytes(gzip.compress(src.read_bytes()))
    return dst


# -- a loopback HTTP server -------------------------------------------------------------------


class FileServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; 404 for anything else."""

    def __init__(self) -> None:
        import http.server
        import threading

        files: dict[str, bytes] = {}
        self.files = files
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                requests.append(self.path)
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
