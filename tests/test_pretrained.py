"""The weights-folder format: save, load back bit-identically, strict keys, identity, model card."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from singerbench.baselines.ast_encoder import VocalEmbedder
from singerbench.embedder import Embedder
from singerbench.errors import UserError
from singerbench.pretrained import load_pretrained, save_pretrained

TINY = {"depth": 1, "width": 32, "heads": 2, "embedding_dim": 16, "n_mels": 32}


class TinyNet(Embedder):
    """A plugin with weights whose weights_id() ignores ``_weights_id`` (the base class's "none")."""

    name = "tinynet"
    embedding_dim = 4

    def __init__(self, hidden: int = 3, seed: int = 0) -> None:
        super().__init__()
        self.hidden, self.seed = hidden, seed
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.Linear(hidden, 4))

    def config(self) -> dict:
        return {"hidden": self.hidden, "seed": self.seed}

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        return self.net(batch.reshape(batch.shape[0], -1)[:, :8])


def _audio(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 2, 96000, generator=torch.Generator().manual_seed(0))


def test_round_trip_gives_identical_embeddings(tmp_path) -> None:
    model = VocalEmbedder(**TINY, seed=3)
    folder = save_pretrained(
        model, tmp_path / "w", training={"recipe": "test"}, scores={"fma": {"top1": 0.5}}
    )
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = load_pretrained(folder)
    assert type(loaded) is VocalEmbedder and not loaded.training
    assert loaded.config() == model.config()
    x = _audio()
    with torch.no_grad():
        assert torch.equal(model.embed(x), loaded.embed(x))
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert loaded.weights_id() == f"sha256:{digest[:16]}"
    doc = json.loads((folder / "config.json").read_text())
    assert doc["plugin"] == "singerbench.baselines.ast_encoder:VocalEmbedder"
    assert doc["training"] == {"recipe": "test"} and doc["embedding_dim"] == 16


def test_given_identity_wins(tmp_path) -> None:
    folder = save_pretrained(VocalEmbedder(**TINY), tmp_path / "w")
    assert load_pretrained(folder, weights_id="hf:me/x@" + "a" * 40).weights_id() == "hf:me/x@" + "a" * 40


def test_identity_reaches_a_plugin_that_ignores_weights_id_attr(tmp_path) -> None:
    model = TinyNet(hidden=5, seed=1)
    assert model.weights_id() == "none"
    loaded = load_pretrained(save_pretrained(model, tmp_path / "w"), weights_id="sha256:feed")
    assert type(loaded) is TinyNet and loaded.hidden == 5
    assert loaded.weights_id() == "sha256:feed"
    x = torch.randn(3, 1, 16)
    with torch.no_grad():
        assert torch.equal(model.embed(x), loaded.embed(x))


def test_retrained_weights_get_another_identity(tmp_path) -> None:
    a = load_pretrained(save_pretrained(VocalEmbedder(**TINY, seed=0), tmp_path / "a"))
    b = load_pretrained(save_pretrained(VocalEmbedder(**TINY, seed=1), tmp_path / "b"))
    assert a.weights_id() != b.weights_id()


def test_key_mismatch_is_a_user_error_naming_keys(tmp_path) -> None:
    folder = save_pretrained(VocalEmbedder(**TINY), tmp_path / "w")
    doc = json.loads((folder / "config.json").read_text())
    doc["config"]["depth"] = 2  # the architecture now expects blocks.1.*
    (folder / "config.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"missing keys encoder\.blocks\.1\."):
        load_pretrained(folder)
    folder2 = save_pretrained(VocalEmbedder(**{**TINY, "depth": 2}), tmp_path / "w2")
    doc["config"]["depth"] = 1
    (folder2 / "config.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"unexpected keys encoder\.blocks\.1\."):
        load_pretrained(folder2)


def test_shape_mismatch_is_a_user_error(tmp_path) -> None:
    folder = save_pretrained(VocalEmbedder(**TINY), tmp_path / "w")
    doc = json.loads((folder / "config.json").read_text())
    doc["config"]["embedding_dim"] = 24
    (folder / "config.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match="does not fit"):
        load_pretrained(folder)


def test_broken_folders_are_user_errors(tmp_path, monkeypatch) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_pretrained(tmp_path / "nowhere")
    folder = save_pretrained(VocalEmbedder(**TINY), tmp_path / "w")
    (folder / "model.safetensors").unlink()
    with pytest.raises(UserError, match="model.safetensors is missing"):
        load_pretrained(folder)
    folder = save_pretrained(VocalEmbedder(**TINY), tmp_path / "w3")
    doc = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**doc, "plugin": "no_such_module_xyz:Thing"}))
    with pytest.raises(UserError, match="not a registered singerbench model.*--trust-plugin"):
        load_pretrained(folder)
    monkeypatch.setenv("SINGERBENCH_TRUST", "plugin")  # the user's opt-in: then it is just a missing module
    with pytest.raises(UserError, match="cannot be imported"):
        load_pretrained(folder)
    monkeypatch.delenv("SINGERBENCH_TRUST")
    (folder / "config.json").write_text(json.dumps({**doc, "format": "other/1"}))
    with pytest.raises(UserError, match="singerbench-weights/1"):
        load_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    (folder / "config.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match="safetensors"):
        load_pretrained(folder)


def test_model_card_states_origin_and_scores(tmp_path) -> None:
    training = {
        "recipe": "singer-contrastive/1",
        "input": "vocals",
        "lr": 1e-4,
        "data": {"name": "synth-tiny", "generated": True, "singers": 4},
    }
    folder = save_pretrained(
        VocalEmbedder(**TINY), tmp_path / "w", training=training, scores={"fma": {"top1": 0.75}}
    )
    card = (folder / "README.md").read_text()
    front = card.split("---")[1]
    assert (
        "library_name: singerbench" in front
        and "license: mit" in front
        and "- singer-identification" in front
    )
    assert "**generated**" in card and "synth-tiny" in card
    assert "| fma / top1 | 0.7500 |" in card and "| lr | 0.0001 |" in card


def test_convert_clmr_loads_like_the_checkpoint(tmp_path) -> None:
    from singerbench.baselines.clmr import CLMREmbedder
    from singerbench.baselines.samplecnn import SampleCNN
    from singerbench.pretrained import convert_clmr

    ckpt = tmp_path / "clmr_checkpoint_test.pt"
    encoder = {f"encoder.{k}": v for k, v in SampleCNN(seed=5).state_dict().items()}
    torch.save({**encoder, "projector.0.weight": torch.zeros(2, 2)}, ckpt)
    folder = convert_clmr(ckpt, tmp_path / "clmr")
    doc = json.loads((folder / "config.json").read_text())
    assert doc["config"] == {"seed": 0} and doc["training"]["converted_from"] == ckpt.name
    assert "license: apache-2.0" in (folder / "README.md").read_text()
    converted, direct = load_pretrained(folder), CLMREmbedder(checkpoint=str(ckpt))
    x = torch.randn(2, 1, 132300, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(converted.embed(x), direct.embed(x))
    assert converted.weights_id().startswith("sha256:")
    with pytest.raises(UserError):
        convert_clmr(tmp_path / "missing.pt", tmp_path / "x")
