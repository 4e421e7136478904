"""A loopback Hugging Face Hub for tests: serves a folder tree of repos over HTTP on 127.0.0.1.

Layout of ``root``: ``root/OWNER/NAME/...`` are model repos, ``root/datasets/OWNER/NAME/...`` dataset repos;
each repo folder is the working tree of its ``main`` branch. The server scans a repo on every request and
records a new commit whenever its files changed (content-addressed, deterministic 40-hex ids), keeping every
earlier commit's bytes in memory: so a test can write files, read the commit, change files, and still pull
the old commit by its hash. Pushes (``create_repo`` + ``upload_folder``) write into the same tree.

What it answers (what ``huggingface_hub`` 2.x asks for; models and datasets alike):

- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` and ``/datasets/{repo}/resolve/...``: the file with
  ``X-Repo-Commit``, ``ETag`` (sha256 of the content), ``Content-Length``; ``Range: bytes=a-b`` → 206.
- ``GET /api/{models,datasets}/{repo}[/revision/{rev}]``: ``{"id", "sha", "siblings": [{"rfilename"}], ...}``.
- ``GET /api/{models,datasets}/{repo}/tree/{rev}[/{path}][?recursive=1]``: file and directory entries;
  ``POST .../paths-info/{rev}`` (``paths`` in a form or JSON body).
- ``POST /api/repos/create``, ``POST /api/validate-yaml``, ``POST /api/{type}s/{repo}/preupload/{rev}``
  (every file is answered ``uploadMode: regular``, so content travels base64 in the commit) and
  ``POST /api/{type}s/{repo}/commit/{rev}`` (ndjson: ``header``, ``file``, ``deletedFile``, ``deletedFolder``;
  ``lfsFile`` is refused with 400: this server never asks for LFS). Commits go to ``main`` only.
- Misses are 404 with ``X-Error-Code``: ``RepoNotFound``, ``RevisionNotFound`` or ``EntryNotFound``.

Pointing a client at it: ``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_HUB_CACHE``
once, at import, into ``huggingface_hub.constants``; setting the environment variables later does not move
it. ``singerbench.hub`` reads the environment at call time, so for it ``monkeypatch.setenv`` is enough; for
code that calls ``huggingface_hub`` directly (``datasets``, demucs) use :func:`use_hub`, which sets the
variables *and* patches the constants for the test's duration::

    from hubserver import HubServer, use_hub

    def test_pull(tmp_path, monkeypatch):
        with HubServer(tmp_path / "hub") as url:
            use_hub(monkeypatch, url, cache_dir=tmp_path / "hf-cache")
            ...

A subprocess (``singerbench`` CLI in a test) needs only the environment: ``env={"HF_ENDPOINT": url,
"HF_HUB_OFFLINE": "0", "HF_HUB_CACHE": ...}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HubServer", "use_hub", "git_blob_oid"]


def git_blob_oid(data: bytes) -> str:
    """Git's sha1 of a blob: what the Hub reports as a regular file's ``oid``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class _Repo:
    kind: str  # "model" or "dataset"
    repo_id: str
    folder: Path
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)  # oldest first
    _stamp: tuple = ()

    def refresh(self) -> None:
        """Record a commit if the working tree differs from the last one."""
        files = sorted(p for p in self.folder.rglob("*") if p.is_file() and ".git" not in p.parts)
        stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
        if stamp == self._stamp and self.commits:
            return
        snapshot = {p.relative_to(self.folder).as_posix(): p.read_bytes() for p in files}
        if not self.commits or self.commits[-1][1] != snapshot:
            parent = self.commits[-1][0] if self.commits else ""
            h = hashlib.sha1(parent.encode())
            for name, data in sorted(snapshot.items()):
                h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
            self.commits.append((h.hexdigest(), snapshot))
        self._stamp = stamp

    def at(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        self.refresh()
        if revision in ("main", "HEAD", "refs/heads/main"):
            return self.commits[-1]
        for sha, snap in self.commits:
            if sha == revision or (len(revision) >= 7 and sha.startswith(revision)):
                return sha, snap
        return None


class HubServer:
    """Threaded loopback Hub over the repos under ``root``; a context manager yielding its base URL."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for assertions

    # --- repos ------------------------------------------------------------------------------------

    def folder(self, kind: str, repo_id: str) -> Path:
        return (self.root / "datasets" / repo_id) if kind == "dataset" else (self.root / repo_id)

    def repo(self, kind: str, repo_id: str) -> _Repo | None:
        with self._lock:
            folder = self.folder(kind, repo_id)
            if not folder.is_dir():
                return None
            key = (kind, repo_id)
            if key not in self._repos:
                self._repos[key] = _Repo(kind, repo_id, folder)
            self._repos[key].refresh()
            return self._repos[key]

    def commit(self, repo_id: str, kind: str = "model") -> str:
        """The current commit of ``main`` (records one if the folder changed)."""
        repo = self.repo(kind, repo_id)
        if repo is None:
            raise KeyError(repo_id)
        return repo.commits[-1][0]

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> str:
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hubserver", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests read hub.requests instead
        pass

    # --- plumbing ---------------------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False
    ):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, obj: object, status: int = 200, head: bool = False, headers: dict | None = None) -> None:
        self._send(
            status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})}, head
        )

    def _error(
        self, code: str, message: str, status: int = 404, head: bool = False, extra: dict | None = None
    ):
        hdrs = {"X-Error-Code": code, "X-Error-Message": message, **(extra or {})}
        self._json({"error": message}, status, head, hdrs)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # --- routing ----------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        split = urlsplit(self.path)
        self.hub.requests.append((method, split.path))
        query = parse_qs(split.query)
        parts = [unquote(p) for p in split.path.strip("/").split("/")]
        head = method == "HEAD"
        try:
            if parts[:1] == ["api"]:
                self._api(method, parts[1:], query)
                return
            kind = "model"
            if parts[:1] == ["datasets"]:
                kind, parts = "dataset", parts[1:]
            if len(parts) >= 5 and parts[2] == "resolve" and method in ("HEAD", "GET"):
                self._resolve(kind, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), head)
                return
            self._error("NotFound", f"no route for {method} {split.path}", head=head)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _lookup(self, kind: str, repo_id: str, rev: str, head: bool = False):
        repo = self.hub.repo(kind, repo_id)
        if repo is None:
            self._error("RepoNotFound", f"Repository not found: {repo_id}", 404, head)
            return None
        found = repo.at(rev)
        if found is None:
            self._error("RevisionNotFound", f"Invalid rev id: {rev}", 404, head)
            return None
        return repo, found[0], found[1]

    def _resolve(self, kind: str, repo_id: str, rev: str, path: str, head: bool) -> None:
        got = self._lookup(kind, repo_id, rev, head)
        if got is None:
            return
        _, sha, snap = got
        if path not in snap:
            self._error("EntryNotFound", f"{path} does not exist on {rev}", 404, head, {"X-Repo-Commit": sha})
            return
        data = snap[path]
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        status, body = 200, data
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and not head:
            start_s, _, end_s = rng[6:].split(",")[0].partition("-")
            start = int(start_s) if start_s else max(0, len(data) - int(end_s))
            end = int(end_s) if (end_s and start_s) else len(data) - 1
            end = min(end, len(data) - 1)
            if start >= len(data):
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            status, body = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    # --- /api ---------------------------------------------------------------------------------------

    def _api(self, method: str, parts: list[str], query: dict) -> None:
        if method == "POST" and parts == ["repos", "create"]:
            self._create(json.loads(self._body() or b"{}"))
            return
        if method == "POST" and parts == ["validate-yaml"]:
            self._body()
            self._json({"errors": [], "warnings": []})
            return
        if len(parts) < 3 or parts[0] not in ("models", "datasets"):
            self._error("NotFound", f"no API route /api/{'/'.join(parts)}", head=method == "HEAD")
            return
        kind = "model" if parts[0] == "models" else "dataset"
        repo_id, rest = "/".join(parts[1:3]), parts[3:]
        head = method == "HEAD"
        if method in ("GET", "HEAD") and (not rest or (rest[0] == "revision" and len(rest) >= 2)):
            rev = "/".join(rest[1:]) if rest else "main"
            got = self._lookup(kind, repo_id, rev, head)
            if got is not None:
                self._json(self._info(kind, repo_id, got[1], got[2]), head=head)
            return
        if method == "GET" and rest[:1] == ["tree"] and len(rest) >= 2:
            got = self._lookup(kind, repo_id, rest[1])
            if got is not None:
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                self._tree(got[2], "/".join(rest[2:]).strip("/"), recursive)
            return
        if method == "POST" and rest[:1] == ["paths-info"] and len(rest) >= 2:
            body = self._body()
            ctype = self.headers.get("Content-Type", "")
            paths = (
                json.loads(body).get("paths", [])
                if "json" in ctype
                else parse_qs(body.decode()).get("paths", [])
            )
            got = self._lookup(kind, repo_id, rest[1])
            if got is not None:
                entries = self._entries(got[2])
                self._json([entries[p.strip("/")] for p in paths if p.strip("/") in entries])
            return
        if method == "POST" and rest[:1] == ["preupload"]:
            self._preupload(kind, repo_id, json.loads(self._body() or b"{}"))
            return
        if method == "POST" and rest[:1] == ["commit"]:
            self._commit(kind, repo_id, "/".join(rest[1:]) or "main", self._body())
            return
        self._error("NotFound", f"no API route /api/{'/'.join(parts)}", head=head)

    def _repo_url(self, kind: str, repo_id: str) -> str:
        prefix = "datasets/" if kind == "dataset" else ""
        return f"{self.hub.url}/{prefix}{repo_id}"

    def _info(self, kind: str, repo_id: str, sha: str, snap: dict[str, bytes]) -> dict:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return {
            "_id": hashlib.sha1(f"{kind}/{repo_id}".encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": sha,
            "lastModified": now,
            "createdAt": now,
            "private": False,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "cardData": {},
            "siblings": [{"rfilename": name} for name in sorted(snap)],
        }

    @staticmethod
    def _entries(snap: dict[str, bytes]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for name, data in sorted(snap.items()):
            parents = name.split("/")[:-1]
            for i in range(len(parents)):
                d = "/".join(parents[: i + 1])
                out.setdefault(
                    d,
                    {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d},
                )
            out[name] = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": name}
        return out

    def _tree(self, snap: dict[str, bytes], path: str, recursive: bool) -> None:
        entries = self._entries(snap)
        if path and (path not in entries or entries[path]["type"] != "directory"):
            self._error("EntryNotFound", f"{path} does not exist", 404)
            return
        prefix = f"{path}/" if path else ""
        out = []
        for name, entry in entries.items():
            if not name.startswith(prefix) or name == path:
                continue
            if recursive or "/" not in name[len(prefix) :]:
                out.append(entry)
        self._json(out)

    def _create(self, payload: dict) -> None:
        name, org = payload.get("name"), payload.get("organization")
        kind = payload.get("type") or "model"
        if not name or kind not in ("model", "dataset"):
            self._error("BadRequest", "repo name missing or type not model/dataset", 400)
            return
        repo_id = f"{org}/{name}" if org else name
        folder = self.hub.folder(kind, repo_id)
        url = self._repo_url(kind, repo_id)
        if folder.is_dir():
            self._json({"error": "You already created this repo", "url": url}, 409)
            return
        folder.mkdir(parents=True)
        self.hub.repo(kind, repo_id)
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _preupload(self, kind: str, repo_id: str, payload: dict) -> None:
        repo = self.hub.repo(kind, repo_id)
        if repo is None:
            self._error("RepoNotFound", f"Repository not found: {repo_id}")
            return
        snap = repo.commits[-1][1]
        files = [
            {
                "path": f["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": git_blob_oid(snap[f["path"]]) if f["path"] in snap else None,
            }
            for f in payload.get("files", [])
        ]
        self._json({"files": files, "commitOid": repo.commits[-1][0]})

    def _commit(self, kind: str, repo_id: str, rev: str, body: bytes) -> None:
        repo = self.hub.repo(kind, repo_id)
        if repo is None:
            self._error("RepoNotFound", f"Repository not found: {repo_id}")
            return
        if rev not in ("main", "refs/heads/main"):
            self._error("RevisionNotFound", f"this loopback Hub commits to main only, not {rev}")
            return
        ops = [json.loads(line) for line in body.splitlines() if line.strip()]
        folder = repo.folder.resolve()

        def target(path: str) -> Path:
            p = (folder / path).resolve()
            if not p.is_relative_to(folder):
                raise ValueError(path)
            return p

        try:
            for op in ops:
                key, value = op.get("key"), op.get("value", {})
                if key == "header":
                    continue
                if key == "lfsFile":
                    self._error("BadRequest", "this loopback Hub takes regular (base64) uploads only", 400)
                    return
                if key == "file":
                    raw = value["content"].encode()
                    data = base64.b64decode(raw) if value.get("encoding") == "base64" else raw
                    p = target(value["path"])
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_bytes(data)
                elif key == "deletedFile":
                    target(value["path"]).unlink(missing_ok=True)
                elif key == "deletedFolder":
                    shutil.rmtree(target(value["path"]), ignore_errors=True)
                else:
                    self._error("BadRequest", f"unknown commit operation {key!r}", 400)
                    return
        except (KeyError, ValueError) as e:
            self._error("BadRequest", f"malformed commit operation: {e}", 400)
            return
        repo.refresh()
        sha = repo.commits[-1][0]
        self._json(
            {"commitUrl": f"{self._repo_url(kind, repo_id)}/commit/{sha}", "commitOid": sha, "success": True}
        )


def use_hub(monkeypatch, url: str, cache_dir: Path | str, offline: bool = False) -> None:
    """Point every Hub client of this process at ``url`` for one test: environment and import-time constants."""
    from huggingface_hub import constants

    cache_dir = str(cache_dir)
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setenv("HF_HUB_CACHE", cache_dir)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", cache_dir)
