"""The contrastive recipe end to end on a tiny corpus: it trains, writes its curves, resumes bit-exactly, and
its output folder loads as a plugin (also through the loopback Hub)."""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from xml.etree import ElementTree

import numpy as np
import pytest
import torch

from singerbench.errors import UserError
from singerbench.manifest import Manifest
from singerbench.pretrained import load_pretrained
from singerbench.train import PairSampler, TrainConfig, train


@pytest.fixture(scope="module")
def corpus(tiny_synth) -> Manifest:
    """The project's tiny generated corpus (10 singers; train, val, test and cloned songs)."""
    return tiny_synth


def _weights(folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_hybrid_pairs_use_two_songs_of_one_singer_and_all_four_pairings(corpus) -> None:
    sampler = PairSampler(corpus, "hybrid", TrainConfig.tiny(batch_size=16))
    kinds = set()
    for _ in range(8):
        for (ta, oa, ka), (tb, ob, kb) in sampler.train_batch():
            a, b = sampler.tracks[ta], sampler.tracks[tb]
            assert ta != tb and a.singers == b.singers and a.role == b.role == "train"
            assert oa in a.vocal_offsets and ob in b.vocal_offsets
            kinds.add((ka, kb))
    assert kinds == {
        ("vocals", "vocals"),
        ("vocals", "mixture"),
        ("mixture", "vocals"),
        ("mixture", "mixture"),
    }
    val = sampler.val_batches()
    assert val == sampler.val_batches()  # fixed once, from the seed
    assert all(sampler.tracks[a[0]].role == "val" for batch in val for a, _ in batch)


def test_validation_is_one_fixed_pair_per_validation_singer(corpus) -> None:
    sampler = PairSampler(corpus, "vocals", TrainConfig.tiny(batch_size=4))
    pairs = sampler.val_pairs()
    singers = [sampler.tracks[a[0]].singers[0] for a, _ in pairs]
    assert singers == sampler.val_singers and len(set(singers)) == len(pairs) == 10  # one per val singer
    for a, b in pairs:  # the tiny corpus has one val song per singer: it pairs with a training song
        ta, tb = sampler.tracks[a[0]], sampler.tracks[b[0]]
        assert ta.role == "val" and tb.role == "train" and ta.singers == tb.singers
    batches = sampler.val_batches()
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [p for b in batches for p in b] == pairs
    # a last batch of a single pair (no negatives) joins the one before
    assert [len(b) for b in PairSampler(corpus, "vocals", TrainConfig.tiny(batch_size=3)).val_batches()] == [3, 3, 4]


def test_recipe_defaults_are_the_reference_constants() -> None:
    """Each constant of docs/training.md's reference table (deezer/real-cloned-singer-id training/parameters.py,
    training/train.py, foundation/)."""
    c = TrainConfig()
    assert c.batch_size == 128  # BATCH_SIZE
    assert c.adam_eps == 1e-9 and c.scheduler_eps == 1e-9  # EPSILON
    assert c.lr == 1e-4 and c.lr_min == pytest.approx(c.lr * 0.001) and c.lr_min == 1e-7  # min_lr = lr * 0.001
    assert c.lr_patience == 25 and c.lr_factor == 0.5  # STEP_SIZE, FACTOR
    assert c.stop_patience == 100  # EARLY_STOP
    assert c.temperature == 0.2  # TEMPERATURE
    assert c.train_iterations == 32  # TRAIN_STEPS
    assert (c.embedding_dim, c.projector_hidden, c.projector_dim) == (2048, 1024, 2048)  # FEATURE/HIDDEN/PROJ_DIM
    assert (c.depth, c.width, c.heads, c.mlp_ratio, c.n_mels) == (12, 384, 6, 4.0, 128)  # AST-small, N_MELS
    assert c.max_epochs == 1000  # singerbench's safety cap (not in the reference)
    tiny = TrainConfig.tiny()
    assert (tiny.batch_size, tiny.depth, tiny.adam_eps, tiny.lr_min) == (8, 2, 1e-9, 1e-7)  # named CPU size


def test_training_views_are_peak_normalised_per_window(corpus) -> None:
    from singerbench.train import PairAudio

    sampler = PairSampler(corpus, "mixture", TrainConfig.tiny())
    audio = PairAudio(sampler.tracks, 16000, 2)
    track = next(iter(sampler.tracks.values()))
    for offset in track.vocal_offsets[:3]:
        view = audio.side((track.id, float(offset), "mixture"))
        assert float(np.max(np.abs(view))) == pytest.approx(1.0)  # its own 6 s peak, not the track's


def test_the_2048_d_output_layer_keeps_pytorchs_default_init() -> None:
    from singerbench.baselines.ast_encoder import ASTEncoder

    enc = ASTEncoder(depth=1, width=64, heads=2, embedding_dim=2048, seed=0)
    bound = 1 / math.sqrt(64)  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
    weight, bias = enc.head.weight.detach(), enc.head.bias.detach()
    assert float(weight.abs().max()) <= bound and float(weight.std()) > 0.5 * bound / math.sqrt(3)
    assert float(bias.abs().max()) > 0  # default init: a non-zero bias (timm's init would zero it)
    assert float(enc.blocks[0].mlp.fc1.bias.detach().abs().max()) == 0.0  # the blocks keep timm's init (zero bias)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """One 2-epoch tiny run of the Vocal recipe, shared by the tests that only read its output."""
    return train(
        "vocals",
        corpus,
        tmp_path_factory.mktemp("trained") / "run",
        TrainConfig.tiny(max_epochs=2),
        progress=False,
    )


def test_train_writes_history_and_a_loadable_weights_folder(corpus, trained) -> None:
    out = trained
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "checkpoint.pt",
        "config.json",
        "history.csv",
        "loss.svg",
        "model.safetensors",
    ]
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    plot = ElementTree.fromstring((out / "loss.svg").read_text())
    lines = {p.findtext("{http://www.w3.org/2000/svg}title"): p.get("points").split()
             for p in plot.iter("{http://www.w3.org/2000/svg}polyline") if p.get("stroke-width")}
    assert sorted(lines) == ["train", "validation"] and all(len(pts) == 2 for pts in lines.values())
    assert all(np.isfinite(float(r["train_loss"])) and np.isfinite(float(r["val_loss"])) for r in rows)
    doc = json.loads((out / "config.json").read_text())
    assert doc["plugin"] == "singerbench.baselines.ast_encoder:VocalEmbedder"
    training = doc["training"]
    assert training["input"] == "vocals" and training["temperature"] == 0.2 and training["epochs"] == 2
    assert training["data"]["checksum"] == corpus.checksum()
    assert "Training data" in (out / "README.md").read_text()
    model = load_pretrained(out)
    assert model.embedding_dim == 128 and model.weights_id().startswith("sha256:")
    with torch.no_grad():
        z = model.embed(torch.randn(2, 2, 96000))
    assert z.shape == (2, 128) and torch.isfinite(z).all()


def test_resume_after_interruption_equals_uninterrupted(corpus, tmp_path, caplog) -> None:
    whole = train("hybrid", corpus, tmp_path / "whole", TrainConfig.tiny(max_epochs=2), progress=False)
    part = tmp_path / "part"
    train("hybrid", corpus, part, TrainConfig.tiny(max_epochs=1), progress=False)  # "killed" after epoch 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="singerbench.progress"):  # off a terminal it logs, from epoch 1
        resumed = train("hybrid", corpus, part, TrainConfig.tiny(max_epochs=2), progress=False)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "train hybrid: started (2 epoch)" and lines[-1].startswith("train hybrid: done 2/2 epoch")
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ha = [
        (r["epoch"], r["train_loss"], r["val_loss"]) for r in csv.DictReader((whole / "history.csv").open())
    ]
    hb = [(r["epoch"], r["train_loss"], r["val_loss"]) for r in csv.DictReader((part / "history.csv").open())]
    assert ha == hb


def test_checkpoint_of_another_run_is_refused(corpus, trained, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    with pytest.raises(UserError, match=r"different run \(lr differ\)"):
        train("vocals", corpus, run, TrainConfig.tiny(max_epochs=3, lr=1e-3), progress=False)
    with pytest.raises(UserError, match=r"different run \(input differ\)"):
        train("mixture", corpus, run, TrainConfig.tiny(max_epochs=3), progress=False)
    with pytest.raises(UserError, match="not one of"):
        train("speech", corpus, tmp_path / "x", TrainConfig.tiny(), progress=False)
    with pytest.raises(UserError, match="batch_size"):
        train("vocals", corpus, tmp_path / "x", TrainConfig.tiny(batch_size=1), progress=False)


def test_finished_run_is_not_trained_again(corpus, trained, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = _weights(run)
    train("vocals", corpus, run, TrainConfig.tiny(max_epochs=2), progress=False)
    after = _weights(run)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert len(list(csv.DictReader((run / "history.csv").open()))) == 2


def test_trained_folder_loads_through_the_hub(trained, tmp_path, monkeypatch) -> None:
    from hubserver import HubServer, use_hub

    from singerbench.hub import push, resolve_hub_model

    with HubServer(tmp_path / "hub") as url:
        use_hub(monkeypatch, url, tmp_path / "hf-cache")
        commit = push(trained, "me/vocal-tiny", token="hf_test")
        model = resolve_hub_model(f"hf://me/vocal-tiny@{commit}")
    x = torch.randn(2, 2, 96000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.embed(x), load_pretrained(trained).embed(x))


def test_scores_with_pulled_weights_equal_scores_with_local_weights(trained, test_cache, tmp_path, monkeypatch,
                                                                   capsys) -> None:
    """The whole protocol, run on the folder and on the same weights pulled from a loopback Hub."""
    from hubserver import HubServer, use_hub

    from singerbench.cli import main
    from singerbench.hub import push

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "synth").symlink_to(test_cache / "synth")
    args = ["--dataset", "synth", "--synth-preset", "tiny", "--preset", "quick", "--runs", "2",
            "--cache-dir", str(cache), "--no-progress"]
    with HubServer(tmp_path / "hub") as url:
        use_hub(monkeypatch, url, tmp_path / "hf-cache")
        commit = push(trained, "me/vocal-tiny", token="hf_test")
        assert main(["run", "--model", f"hf://me/vocal-tiny@{commit}", *args, "-o", str(tmp_path / "hub.json")]) == 0
    assert main(["run", "--model", str(trained), *args, "-o", str(tmp_path / "local.json")]) == 0
    capsys.readouterr()
    pulled, local = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("hub", "local"))
    assert pulled["model"]["weights_id"] == f"hf:me/vocal-tiny@{commit}"
    assert local["model"]["weights_id"].startswith("sha256:")
    assert pulled["store"]["computed"] == local["store"]["computed"] > 0  # two keys: each embedded once
    assert pulled["scores"] == local["scores"]
    assert pulled["run_details"] == local["run_details"]


@pytest.mark.slow
def test_losses_fall_over_a_longer_tiny_run(corpus, tmp_path) -> None:
    """30 tiny epochs: the training loss falls, and so does the loss on the fixed held-out validation pairs."""
    out = train(
        "vocals", corpus, tmp_path / "run", TrainConfig.tiny(max_epochs=30, stop_patience=100), progress=False
    )
    rows = list(csv.DictReader((out / "history.csv").open()))
    train_loss = [float(r["train_loss"]) for r in rows]
    val_loss = [float(r["val_loss"]) for r in rows]
    assert min(train_loss[-5:]) < train_loss[0] - 0.5
    assert min(val_loss) < val_loss[0] - 0.5
    assert json.loads((out / "config.json").read_text())["training"]["best_val_loss"] == pytest.approx(
        min(val_loss)
    )


def test_recipe_overrides_are_typed_and_checked() -> None:
    assert TrainConfig.parse_overrides(["stop_patience=30", "lr=3e-4", "amp=false"]) == {
        "stop_patience": 30, "lr": 3e-4, "amp": False
    }
    with pytest.raises(UserError, match="FIELD one of depth"):
        TrainConfig.parse_overrides(["patience=3"])
    with pytest.raises(UserError, match="--set lr: expected a float"):
        TrainConfig.parse_overrides(["lr=fast"])
