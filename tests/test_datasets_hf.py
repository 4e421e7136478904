"""hf:// datasets against a loopback Hub serving a small parquet dataset made from generated audio."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import soundfile as sf
from test_datasets_published import SR, singer_tone

from singerbench.errors import UserError

REPO = "tester/sung"
SHA = "a" * 40


def _parquet(split: str, rows: list[tuple[str, int]]) -> bytes:
    cells = []
    for name, i in rows:
        buf = io.BytesIO()
        sf.write(buf, singer_tone(i, 13.0, len(cells)), SR, format="FLAC")
        cells.append({"bytes": buf.getvalue(), "path": f"{name}.flac"})
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = {"audio": {"_type": "Audio"}, "artist": {"dtype": "string", "_type": "Value"},
                "lang": {"dtype": "string", "_type": "Value"}}
    table = pa.table({"audio": cells, "artist": [f"s{i}" for _, i in rows], "lang": ["en"] * len(rows)})
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _files() -> dict[str, bytes]:
    files = {}
    for split, n in (("train", 3), ("validation", 1), ("test", 1)):
        rows = [(f"{split}{k}_{i}", i) for i in range(3) for k in range(n)]
        files[f"data/{split}-00000-of-00001.parquet"] = _parquet(split, rows)
    return files


class _Hub(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def log_message(self, *args) -> None:
        pass

    def _send(self, code: int, body: bytes, headers: dict | None = None, head: bool = False) -> None:
        self.send_response(code)
        for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        path = self.path.split("?")[0]
        api = f"/api/datasets/{REPO}"
        if path in (api, f"{api}/revision/main", f"{api}/revision/{SHA}"):
            doc = {"id": REPO, "sha": SHA, "siblings": [{"rfilename": f} for f in self.files], "private": False}
            return self._send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"}, head)
        if path.startswith(f"{api}/tree/"):
            entries = [{"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                       for f, b in self.files.items()]
            return self._send(200, json.dumps(entries).encode(), {"Content-Type": "application/json"}, head)
        prefix = f"/datasets/{REPO}/resolve/"
        if path.startswith(prefix):
            rev, _, name = path[len(prefix):].partition("/")
            if name in self.files and rev in ("main", SHA):
                body = self.files[name]
                hdr = {"X-Repo-Commit": SHA, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'}
                return self._send(200, body, hdr, head)
            return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, head)
        if path.startswith(api + "/revision/"):
            return self._send(404, b"", {"X-Error-Code": "RevisionNotFound"}, head)
        return self._send(404, b"", {"X-Error-Code": "RepoNotFound"}, head)

    def do_GET(self) -> None:  # noqa: N802
        self._route(False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(True)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    pytest.importorskip("datasets")
    _Hub.files = _files()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    home = tmp_path_factory.mktemp("hfhome")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    mp.setenv("HF_HUB_OFFLINE", "0")
    mp.setenv("HF_HOME", str(home))
    mp.setenv("HF_HUB_CACHE", str(home / "hub"))
    yield home
    mp.undo()
    server.shutdown()


def test_hf_splits(hub, tmp_path):
    from singerbench.datasets import load_dataset

    m = load_dataset(f"hf://{REPO}", singer_column="artist", language_column="lang", cache_dir=tmp_path)
    assert m.singers == ["s0", "s1", "s2"]
    assert [len(m.by_role(r)) for r in ("train", "val", "test")] == [9, 3, 3]
    t = m.by_role("test")[0]
    assert t.vocal_offsets == (0.0, 6.0) and t.language == "en"
    assert t.audio.is_file() and t.audio.is_relative_to(tmp_path / "hf")
    assert sf.info(str(t.audio)).samplerate == SR
    again = load_dataset(f"hf://{REPO}@{SHA}", singer_column="artist", cache_dir=tmp_path)
    assert again.checksum() == m.checksum()


def test_hf_drawn_roles_and_errors(hub, tmp_path):
    from singerbench.datasets import load_dataset

    a = load_dataset(f"hf://{REPO}", singer_column="artist", roles="draw", seed=1, cache_dir=tmp_path)
    b = load_dataset(f"hf://{REPO}", singer_column="artist", roles="draw", seed=1, cache_dir=tmp_path)
    assert a.checksum() == b.checksum()
    assert [len(a.by_role(r)) for r in ("train", "val", "test")] == [9, 3, 3]
    with pytest.raises(UserError, match="no column 'singer'"):
        load_dataset(f"hf://{REPO}", cache_dir=tmp_path)
    with pytest.raises(UserError, match="must be written owner/name"):
        load_dataset("hf://nonsense", cache_dir=tmp_path)
    with pytest.raises(UserError, match="no such dataset"):
        load_dataset("hf://tester/absent", singer_column="artist", cache_dir=tmp_path)


def test_audio_cell_to_file(tmp_path):
    from singerbench.datasets.hf import _materialise

    p = _materialise({"bytes": b"abc", "path": "x.mp3"}, tmp_path, tmp_path / "c", "row")
    assert p.read_bytes() == b"abc" and p.suffix == ".mp3"
    assert _materialise({"bytes": b"abc", "path": "x.mp3"}, tmp_path, tmp_path / "c", "row") == p
    with pytest.raises(UserError, match="neither in the snapshot"):
        _materialise("gone.wav", tmp_path, tmp_path / "c", "row")
    assert Path(p).parent == tmp_path / "c"
