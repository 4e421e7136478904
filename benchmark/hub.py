"""Every Hugging Face Hub call of the project: pull pinned weights for ``hf://`` models, push weights folders,
fetch ``hf://`` datasets.

Settings are read from the environment at call time, not at import time (``huggingface_hub`` freezes them
into ``huggingface_hub.constants`` when it is first imported): ``HF_ENDPOINT`` (the Hub, or a mirror or
loopback test server), ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` / ``HF_HOME`` (the download cache) and
``HF_TOKEN``. So a test or a caller may set them after import.

Failing fast: ``huggingface_hub`` retries a file download for up to a minute when the Hub is unreachable and
the file is not cached (about 23 s on the build machines). Here, the revision is first resolved to a commit
with one metadata request (``model_info``, one try, short timeout); a missing repo or revision, or an
unreachable Hub, ends there in one :class:`~singerbench.errors.UserError`. Offline mode never touches the
network: a model that is not in the cache is an error at once. Files are then downloaded pinned to the
resolved commit, so the ``weights_id`` (``hf:owner/repo@<commit>``) names exactly the bytes used.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from singerbench.embedder import Embedder
from singerbench.errors import UserError
from singerbench.io import atomic_write_text
from singerbench.pretrained import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, load_pretrained, read_config

HF_SCHEME = "hf://"
#: seconds the metadata request that resolves a revision may take before the Hub counts as unreachable.
PROBE_TIMEOUT = float(os.environ.get("SINGERBENCH_HUB_TIMEOUT", "10"))
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_LOCK = threading.RLock()


_REF_FORBIDDEN = set(" ~^:?*[\\\x7f") | {chr(c) for c in range(32)}


def check_revision(revision: str, spec: str = "") -> str:
    """``revision`` if it is a valid git ref name (``git check-ref-format --allow-onelevel``) or commit hash.

    Checked before the name touches the file system: the Hub cache stores a branch as ``refs/<revision>``,
    so ``..`` or a leading ``/`` would otherwise write outside the cache.
    """
    where = f"{spec}: " if spec else ""
    if _COMMIT_RE.match(revision):
        return revision
    problems = []
    if not revision or revision == "@":
        problems.append("it is empty or '@'")
    if any(c in _REF_FORBIDDEN for c in revision):
        problems.append("it holds a space, a control character or one of ~^:?*[\\")
    if ".." in revision:
        problems.append("it holds '..'")
    if "@{" in revision:
        problems.append("it holds '@{'")
    if revision.startswith("/") or revision.endswith("/") or "//" in revision:
        problems.append("it starts or ends with '/' or holds '//'")
    if revision.endswith("."):
        problems.append("it ends with '.'")
    if any(part.startswith(".") or part.endswith(".lock") for part in revision.split("/")):
        problems.append("a part of it starts with '.' or ends with '.lock'")
    if problems:
        raise UserError(
            f"{where}revision {revision!r} is not a valid branch, tag or commit name ({'; '.join(problems)})"
        )
    return revision


@dataclass(frozen=True)
class HubSettings:
    """Hub settings as the environment states them now."""

    endpoint: str
    offline: bool
    cache_dir: str
    token: str | None


def _true(value: str) -> bool:
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def current_settings() -> HubSettings:
    """Read ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE``/``HF_HOME`` and ``HF_TOKEN`` now."""
    from huggingface_hub import constants

    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    if "HF_HUB_OFFLINE" in os.environ:
        offline = _true(os.environ["HF_HUB_OFFLINE"])
    else:
        offline = constants.HF_HUB_OFFLINE
    if os.environ.get("HF_HUB_CACHE"):
        cache = os.path.expanduser(os.environ["HF_HUB_CACHE"])
    elif os.environ.get("HF_HOME"):
        cache = os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    else:
        cache = constants.HF_HUB_CACHE
    return HubSettings(endpoint, offline, cache, os.environ.get("HF_TOKEN") or None)


@contextmanager
def hub_session() -> Iterator[HubSettings]:
    """Current settings, with ``huggingface_hub``'s import-time offline switch set to match while inside.

    Any code that must call ``huggingface_hub`` itself (a dataset adapter) should do so inside this block and
    pass ``endpoint=`` and ``cache_dir=`` from the yielded settings.
    """
    from huggingface_hub import constants

    with _LOCK:
        settings = current_settings()
        saved = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = settings.offline
        try:
            yield settings
        finally:
            constants.HF_HUB_OFFLINE = saved


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """``hf://owner/repo[@revision]`` → (``owner/repo``, revision or None)."""
    if not spec.startswith(HF_SCHEME):
        raise UserError(f"{spec!r} is not a Hub model; write hf://owner/repo or hf://owner/repo@revision")
    rest = spec[len(HF_SCHEME) :].strip("/")
    repo, _, revision = rest.partition("@")
    if not _REPO_RE.match(repo):
        raise UserError(
            f"{spec!r}: the Hub repo must be written owner/name, as in hf://owner/name[@revision]"
        )
    if "@" in rest and not revision:
        raise UserError(f"{spec!r}: nothing follows '@'; give a branch, tag or commit, or drop the '@'")
    if revision:
        check_revision(revision, spec)
    return repo, revision or None


def fetch_dataset(repo: str, revision: str | None) -> Path:
    """The local snapshot folder of Hub dataset ``repo`` at ``revision``, downloaded unless cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if revision:
        check_revision(revision, f"hf://{repo}")
    with hub_session() as settings:
        try:
            return Path(
                snapshot_download(
                    repo,
                    repo_type="dataset",
                    revision=revision,
                    cache_dir=settings.cache_dir,
                    endpoint=settings.endpoint,
                    token=settings.token,
                    etag_timeout=PROBE_TIMEOUT,
                )
            )
        except RevisionNotFoundError:
            raise UserError(f"hf://{repo}: revision {revision or 'main'!r} does not exist") from None
        except RepositoryNotFoundError:
            raise UserError(
                f"hf://{repo}: no such dataset at {settings.endpoint} (or it is private: set HF_TOKEN)"
            ) from None
        except LocalEntryNotFoundError:
            raise UserError(
                f"hf://{repo}: not in the local Hub cache and the Hub cannot be reached (offline?); "
                "connect once or unset HF_HUB_OFFLINE"
            ) from None
        except (HfHubHTTPError, OSError) as e:
            raise UserError(f"hf://{repo}: download failed: {str(e).splitlines()[0]}") from None


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the Hub could not be reached' (httpx2 in huggingface_hub 2.x)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    types_: list[type[BaseException]] = [OfflineModeIsEnabled, ConnectionError, TimeoutError]
    for mod in ("httpx2", "httpx", "requests"):
        try:
            module = __import__(mod)
        except ImportError:
            continue
        for name in ("TransportError", "ConnectionError", "Timeout", "TimeoutException"):
            exc = getattr(module, name, None)
            if isinstance(exc, type) and issubclass(exc, BaseException):
                types_.append(exc)
    return tuple(types_)


def _cached_snapshot(repo: str, revision: str | None, settings: HubSettings) -> tuple[Path, str] | None:
    """(snapshot folder, commit) of a fully cached weights repo at ``revision``, without the network."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, OfflineModeIsEnabled

    paths = []
    for filename in (CONFIG_FILE, WEIGHTS_FILE):
        try:
            paths.append(
                Path(
                    hf_hub_download(
                        repo,
                        filename,
                        revision=revision,
                        cache_dir=settings.cache_dir,
                        local_files_only=True,
                    )
                )
            )
        except (EntryNotFoundError, OfflineModeIsEnabled, FileNotFoundError, ValueError):
            return None
    folder = paths[0].parent
    return folder, folder.name


def _resolve_commit(repo: str, revision: str | None, settings: HubSettings) -> str:
    """The commit hash ``revision`` (default: main) points at now; one request, no retries."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    api = HfApi(endpoint=settings.endpoint, token=settings.token)
    where = f"{repo}@{revision}" if revision else repo
    try:
        info = api.model_info(repo, revision=revision, timeout=PROBE_TIMEOUT)
    except GatedRepoError:
        raise UserError(
            f"Hub repo {repo} is gated: accept its terms on the Hub and set HF_TOKEN (or run `hf auth login`)"
        ) from None
    except RepositoryNotFoundError:
        raise UserError(
            f"Hub repo {repo} does not exist at {settings.endpoint} (or it is private: set HF_TOKEN)"
        ) from None
    except RevisionNotFoundError:
        raise UserError(
            f"Hub repo {repo} has no revision {revision!r} (a branch, tag or commit hash)"
        ) from None
    except HfHubHTTPError as e:
        raise UserError(f"the Hub at {settings.endpoint} refused {where}: {str(e).splitlines()[0]}") from None
    if not info.sha:
        raise UserError(f"the Hub at {settings.endpoint} did not say which commit {where} is")
    if not _COMMIT_RE.match(str(info.sha)):  # it becomes a folder name in the cache: only 40 hex digits
        raise UserError(f"the Hub at {settings.endpoint} answered {where} with a malformed commit {info.sha!r}")
    return info.sha


def _download(repo: str, commit: str, settings: HubSettings) -> Path:
    """Download the weights files pinned to ``commit``; returns the snapshot folder holding them."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    def fetch(filename: str) -> Path:
        return Path(
            hf_hub_download(
                repo,
                filename,
                revision=commit,
                cache_dir=settings.cache_dir,
                endpoint=settings.endpoint,
                token=settings.token,
                etag_timeout=PROBE_TIMEOUT,
            )
        )

    for filename in (CONFIG_FILE, WEIGHTS_FILE):
        try:
            path = fetch(filename)
        except LocalEntryNotFoundError:  # the Hub stopped answering between the metadata call and here
            raise UserError(
                f"downloading {filename} of {repo}@{commit[:12]} failed: the Hub at {settings.endpoint} "
                "stopped answering; run the command again"
            ) from None
        except EntryNotFoundError:
            raise UserError(
                f"Hub repo {repo}@{commit[:12]} has no {filename}: it is not a singerbench weights repo "
                "(one holds config.json and model.safetensors; publish one with `singerbench push`)"
            ) from None
        except HfHubHTTPError as e:
            raise UserError(
                f"downloading {filename} of {repo}@{commit[:12]} failed: {str(e).splitlines()[0]}"
            ) from None
    try:
        fetch(CARD_FILE)  # the model card is optional; it only documents the weights
    except (EntryNotFoundError, HfHubHTTPError):
        pass
    return path.parent


def _remember_ref(repo: str, revision: str, commit: str, settings: HubSettings) -> None:
    """Record in the cache which commit ``revision`` named, so offline runs find ``hf://repo[@branch]`` too.

    Downloads are pinned to the commit hash, which stores no branch ref; this writes the ref file of the
    Hub cache layout (``models--owner--name/refs/<revision>``) as a branch download would.
    """
    if _COMMIT_RE.match(revision):
        return
    check_revision(revision)
    refs = (Path(settings.cache_dir) / f"models--{repo.replace('/', '--')}" / "refs").resolve()
    ref = refs / revision
    if not ref.resolve().is_relative_to(refs):  # belt and braces beside check_revision
        raise UserError(f"revision {revision!r} would be stored outside the Hub cache; refusing it")
    try:
        atomic_write_text(ref, commit)
    except OSError:
        pass  # a read-only cache still serves commit-pinned specs


def resolve_hub_model(spec: str) -> Embedder:
    """Load ``hf://owner/repo[@revision]``: resolve the revision to a commit, pull pinned files, load them.

    The plugin's ``weights_id()`` becomes ``hf:owner/repo@<40-hex commit>``.
    """
    repo, revision = parse_hub_spec(spec)
    with hub_session() as settings:
        if settings.offline:
            cached = _cached_snapshot(repo, revision, settings)
            if cached is None:
                raise UserError(
                    f"{spec} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                    "unset HF_HUB_OFFLINE to download it (or copy the weights folder and pass --model DIR)"
                )
            folder, commit = cached
        else:
            try:
                commit = _resolve_commit(repo, revision, settings)
                folder = _download(repo, commit, settings)
                _remember_ref(repo, revision or "main", commit, settings)
            except _network_errors() as e:
                cached = _cached_snapshot(repo, revision, settings)
                if cached is None:
                    raise UserError(
                        f"cannot reach the Hugging Face Hub at {settings.endpoint} ({type(e).__name__}) and "
                        f"{spec} is not in the local cache; check the network or HF_ENDPOINT"
                    ) from None
                warnings.warn(f"Hub unreachable; using the cached {spec}", stacklevel=2)
                folder, commit = cached
    return load_pretrained(
        {CONFIG_FILE: folder / CONFIG_FILE, WEIGHTS_FILE: folder / WEIGHTS_FILE},
        weights_id=f"hf:{repo}@{commit}",
    )


def resolve_local_model(folder: Path) -> Embedder:
    """Load a local weights folder (``--model DIR``); its identity is the hash of its weights file."""
    return load_pretrained(Path(folder))


def push(folder: Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Publish a weights folder to the Hub repo ``repo_id`` (created if needed); returns the new commit hash.

    Only the three files of the weights format are uploaded. Load it back with ``hf://repo_id@<commit>``.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"weights folder {folder} does not exist")
    read_config(folder / CONFIG_FILE)
    if not (folder / WEIGHTS_FILE).is_file():
        raise UserError(f"{folder} has no {WEIGHTS_FILE}; it is not a complete weights folder")
    if not _REPO_RE.match(repo_id):
        raise UserError(f"Hub repo id {repo_id!r} must be written owner/name")
    with hub_session() as settings:
        if settings.offline:
            raise UserError("cannot push while HF_HUB_OFFLINE is set; unset it to publish to the Hub")
        api = HfApi(endpoint=settings.endpoint, token=token or settings.token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            info = api.upload_folder(
                folder_path=str(folder),
                repo_id=repo_id,
                repo_type="model",
                allow_patterns=[CONFIG_FILE, WEIGHTS_FILE, CARD_FILE],
                commit_message=f"singerbench push: {read_config(folder / CONFIG_FILE).get('name', folder.name)}",
            )
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else None
            if status in (401, 403):
                raise UserError(
                    f"the Hub refused to write {repo_id} (HTTP {status}): set HF_TOKEN to a token with write "
                    "access, pass --token, or run `hf auth login`"
                ) from None
            raise UserError(f"pushing to {repo_id} failed: {str(e).splitlines()[0]}") from None
        except _network_errors() as e:
            raise UserError(
                f"cannot reach the Hugging Face Hub at {settings.endpoint} ({type(e).__name__}); "
                "check the network or HF_ENDPOINT"
            ) from None
    return info.oid
