"""Pull and push through a loopback Hub (tests/hubserver.py); the network is never used."""

from __future__ import annotations

import socket

import pytest
import torch
from hubserver import HubServer, use_hub

from singerbench.baselines.ast_encoder import VocalEmbedder
from singerbench.errors import UserError
from singerbench.hub import parse_hub_spec, push, resolve_hub_model, resolve_local_model
from singerbench.pretrained import load_pretrained, save_pretrained

TINY = {"depth": 1, "width": 32, "heads": 2, "embedding_dim": 16, "n_mels": 32}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    server = HubServer(tmp_path / "hub")
    url = server.start()
    use_hub(monkeypatch, url, tmp_path / "hf-cache")
    yield server
    server.stop()


def _publish(server: HubServer, repo: str, seed: int, tmp_path) -> str:
    """Write a weights folder straight into the server's tree; returns the commit it makes."""
    save_pretrained(VocalEmbedder(**TINY, seed=seed), server.root / repo)
    return server.commit(repo)


def _embed(model) -> torch.Tensor:
    x = torch.randn(2, 2, 96000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model.embed(x)


def test_pull_equals_local_folder_and_pins_commit(hub, tmp_path) -> None:
    commit = _publish(hub, "owner/vocal-tiny", 0, tmp_path)
    pulled = resolve_hub_model("hf://owner/vocal-tiny")
    local = resolve_local_model(hub.root / "owner/vocal-tiny")
    assert torch.equal(_embed(pulled), _embed(local))
    assert pulled.weights_id() == f"hf:owner/vocal-tiny@{commit}"
    assert local.weights_id().startswith("sha256:")
    downloads = [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
    assert all(f"/resolve/{commit}/" in p for p in downloads)  # every file pinned to the resolved commit


def test_pinned_revision_gets_old_weights(hub, tmp_path) -> None:
    old = _publish(hub, "owner/m", 0, tmp_path)
    new = _publish(hub, "owner/m", 1, tmp_path)
    assert old != new
    pinned, latest = resolve_hub_model(f"hf://owner/m@{old}"), resolve_hub_model("hf://owner/m@main")
    assert pinned.weights_id() == f"hf:owner/m@{old}" and latest.weights_id() == f"hf:owner/m@{new}"
    assert torch.equal(_embed(pinned), _embed(VocalEmbedder(**TINY, seed=0)))
    assert torch.equal(_embed(latest), _embed(VocalEmbedder(**TINY, seed=1)))


def test_offline_uses_cache_and_refuses_what_is_not_cached(hub, tmp_path, monkeypatch) -> None:
    commit = _publish(hub, "owner/cached", 0, tmp_path)
    online = resolve_hub_model("hf://owner/cached")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.requests.clear()
    offline = resolve_hub_model("hf://owner/cached")
    assert offline.weights_id() == f"hf:owner/cached@{commit}"
    assert torch.equal(_embed(online), _embed(offline))
    with pytest.raises(UserError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE is set"):
        resolve_hub_model("hf://owner/never-pulled")
    assert hub.requests == []  # offline means no request at all


def test_unknown_repo_revision_and_foreign_repo_are_user_errors(hub, tmp_path) -> None:
    _publish(hub, "owner/real", 0, tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        resolve_hub_model("hf://owner/nope")
    with pytest.raises(UserError, match="has no revision 'v9'"):
        resolve_hub_model("hf://owner/real@v9")
    (hub.root / "owner/text").mkdir(parents=True)
    (hub.root / "owner/text/notes.txt").write_text("not weights")
    with pytest.raises(UserError, match="has no config.json"):
        resolve_hub_model("hf://owner/text")


def test_unreachable_hub_is_one_user_error(tmp_path, monkeypatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    use_hub(monkeypatch, f"http://127.0.0.1:{port}", tmp_path / "hf-cache")
    with pytest.raises(UserError, match="cannot reach the Hugging Face Hub"):
        resolve_hub_model("hf://owner/anything")


def test_bad_specs() -> None:
    assert parse_hub_spec("hf://a/b@v1") == ("a/b", "v1")
    assert parse_hub_spec("hf://a/b") == ("a/b", None)
    for bad in ("hf://justname", "hf://a/b/c", "hf://a/b@", "a/b"):
        with pytest.raises(UserError):
            parse_hub_spec(bad)


def test_push_then_pull_round_trip(hub, tmp_path) -> None:
    model = VocalEmbedder(**TINY, seed=7)
    folder = save_pretrained(model, tmp_path / "weights", training={"recipe": "test"})
    (folder / "checkpoint.pt").write_bytes(b"training state, not for the Hub")
    commit = push(folder, "me/pushed", token="hf_test")
    assert len(commit) == 40
    assert sorted(p.name for p in (hub.root / "me/pushed").iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    pulled = resolve_hub_model(f"hf://me/pushed@{commit}")
    assert pulled.weights_id() == f"hf:me/pushed@{commit}"
    assert torch.equal(_embed(pulled), _embed(load_pretrained(folder)))
    assert push(folder, "me/pushed", token="hf_test") == commit  # unchanged files: no new commit


def test_push_refuses_incomplete_folders_and_offline(hub, tmp_path, monkeypatch) -> None:
    with pytest.raises(UserError, match="does not exist"):
        push(tmp_path / "none", "me/x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError):
        push(tmp_path / "empty", "me/x")
    folder = save_pretrained(VocalEmbedder(**TINY), tmp_path / "w")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        push(folder, "me/x")


def test_unreachable_hub_falls_back_to_a_cached_pull(hub, tmp_path, monkeypatch) -> None:
    commit = _publish(hub, "owner/kept", 0, tmp_path)
    resolve_hub_model("hf://owner/kept")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    use_hub(monkeypatch, dead, tmp_path / "hf-cache")
    with pytest.warns(UserWarning, match="Hub unreachable"):
        model = resolve_hub_model("hf://owner/kept")
    assert model.weights_id() == f"hf:owner/kept@{commit}"


def test_server_serves_dataset_repos(hub, tmp_path) -> None:
    """The loopback Hub also answers dataset-repo calls (info, tree, download, ranged reads)."""
    from huggingface_hub import HfApi, HfFileSystem, hf_hub_download

    data = bytes(range(256)) * 8
    (hub.root / "datasets/org/songs/data").mkdir(parents=True)
    (hub.root / "datasets/org/songs/data/train-00000.parquet").write_bytes(data)
    api = HfApi(endpoint=hub.url)
    info = api.dataset_info("org/songs")
    assert info.sha == hub.commit("org/songs", kind="dataset")
    tree = {e.path for e in api.list_repo_tree("org/songs", repo_type="dataset", recursive=True)}
    assert tree == {"data", "data/train-00000.parquet"}
    path = hf_hub_download(
        "org/songs",
        "data/train-00000.parquet",
        repo_type="dataset",
        endpoint=hub.url,
        cache_dir=tmp_path / "c",
    )
    assert open(path, "rb").read() == data
    with HfFileSystem(endpoint=hub.url).open("datasets/org/songs/data/train-00000.parquet", "rb") as f:
        f.seek(300)
        assert f.read(10) == data[300:310]
