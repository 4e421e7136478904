"""Untrusted weights never run code: a config asking for trust, a separator naming a class, a revision with '..'.

Each attack is real: the payload would create a marker file if it ran. Each test also shows the gate is the
only thing in the way: with the user's explicit opt-in the same payload does run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from hubserver import HubServer, use_hub

from singerbench.baselines.clmr import CLMREmbedder
from singerbench.cli import main
from singerbench.errors import UserError
from singerbench.hub import check_revision, parse_hub_spec, resolve_hub_model
from singerbench.pretrained import load_pretrained, save_pretrained
from singerbench.trust import revoke_all


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appears only if the pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(autouse=True)
def no_trust(monkeypatch):
    for var in ("SINGERBENCH_TRUST", "SINGERBENCH_TRUST_CHECKPOINTS"):
        monkeypatch.delenv(var, raising=False)
    revoke_all()
    yield
    revoke_all()


def one_error_line(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def clmr_folder_asking_for_trust(tmp_path: Path) -> tuple[Path, Path]:
    """A CLMR weights folder whose config.json names a pickled checkpoint and sets ``"trusted": true``."""
    marker = tmp_path / "pwned"
    state = {f"encoder.{k}": v for k, v in CLMREmbedder().encoder.state_dict().items()}
    ckpt = tmp_path / "evil.pt"
    torch.save({"hparams": Payload(marker), **state}, ckpt)
    folder = save_pretrained(CLMREmbedder(), tmp_path / "weights")
    doc = json.loads((folder / "config.json").read_text())
    doc["config"].update(checkpoint=str(ckpt), trusted=True)
    (folder / "config.json").write_text(json.dumps(doc))
    return folder, marker


def test_a_config_asking_for_trust_runs_nothing(tmp_path, capsys, monkeypatch):
    folder, marker = clmr_folder_asking_for_trust(tmp_path)
    with pytest.warns(UserWarning, match="asks for trust"), pytest.raises(UserError, match="pickled Python objects"):
        load_pretrained(folder)
    assert not marker.exists()
    code = main(["validate", str(folder)])
    line = one_error_line(code, capsys.readouterr().err)
    assert "--trust-checkpoints" in line and not marker.exists()
    # the user's own opt-in (not the file's) is what unpickles it: the payload then runs
    monkeypatch.setenv("SINGERBENCH_TRUST", "pickle")
    with pytest.warns(UserWarning, match="asks for trust"):
        load_pretrained(folder)
    assert marker.exists()


def test_a_config_naming_an_unregistered_module_imports_nothing(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "evil_plugin_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom singerbench.baselines.mfcc import *\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("evil_plugin_mod", None)
    from singerbench.baselines.mfcc import MFCCEmbedder

    folder = save_pretrained(MFCCEmbedder(), tmp_path / "w")
    doc = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**doc, "plugin": "evil_plugin_mod:MFCCEmbedder"}))
    code = main(["validate", str(folder)])
    line = one_error_line(code, capsys.readouterr().err)
    assert "not a registered singerbench model" in line and not marker.exists()
    code = main(["validate", "--trust-plugin", str(folder)])  # the user's decision, on the command line
    capsys.readouterr()
    assert marker.exists() and code == 0
    sys.modules.pop("evil_plugin_mod", None)


@pytest.mark.parametrize(
    "revision",
    ["../../../x", "..", "/etc/passwd", "a/../../b", "x.lock", "a@{1}", "a b", "a~1", "a^", "a:b", "a?", "a*",
     "a[", "a\\b", ".hidden", "a/.b", "a.", "a/", "a//b", "a\x01b", "@"],
)
def test_invalid_revisions_are_refused(revision):
    with pytest.raises(UserError, match="not a valid branch, tag or commit name"):
        check_revision(revision)


@pytest.mark.parametrize("revision", ["main", "v1.0", "feature/x", "refs/pr/1", "a" * 40, "release-2026.12"])
def test_valid_revisions_pass(revision):
    assert check_revision(revision) == revision


def test_a_revision_with_dotdot_writes_nothing_outside_the_cache(tmp_path, monkeypatch, capsys):
    server = HubServer(tmp_path / "hub")
    url = server.start()
    try:
        use_hub(monkeypatch, url, tmp_path / "cache" / "hf")
        from singerbench.baselines.mfcc import MFCCEmbedder

        save_pretrained(MFCCEmbedder(), server.root / "owner/name")
        (server.root / "owner/name").mkdir(parents=True, exist_ok=True)
        before = sorted(p for p in tmp_path.rglob("*") if "cache" not in p.parts)
        with pytest.raises(UserError, match="not a valid branch"):
            resolve_hub_model("hf://owner/name@../../../x")
        code = main(["validate", "hf://owner/name@../../../../escaped"])
        one_error_line(code, capsys.readouterr().err)
        assert server.requests == []  # refused before any request
        after = sorted(p for p in tmp_path.rglob("*") if "cache" not in p.parts)
        assert after == before and not (tmp_path / "escaped").exists() and not (tmp_path / "x").exists()
        # a proper branch still works
        assert resolve_hub_model("hf://owner/name@main").weights_id().startswith("hf:owner/name@")
    finally:
        server.stop()
    assert parse_hub_spec("hf://owner/name@v1")[1] == "v1"


# --- separators ------------------------------------------------------------------------------------------

demucs = pytest.importorskip("demucs")


def tiny_htdemucs_safetensors(path: Path, klass: str) -> Path:
    """A tiny HTDemucs saved the way demucs' Hub repos hold it, its metadata naming ``klass``."""
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=4, depth=3, nfft=1024,
                     samplerate=8000, segment=1, t_layers=1, t_heads=1, dconv_comp=2)
    args, kwargs = model._init_args_kwargs
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"klass": klass, "args": json.dumps(list(args)),
                                          "kwargs": json.dumps(kwargs)})
    return path


def test_a_separator_file_naming_a_class_runs_nothing(tmp_path, monkeypatch):
    from singerbench.separation import separator_from_option

    marker = tmp_path / "imported"
    (tmp_path / "evil_sep_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom demucs.htdemucs import HTDemucs as Model\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("evil_sep_mod", None)
    repo = tmp_path / "sep"
    repo.mkdir()
    evil = tiny_htdemucs_safetensors(repo / "tiny0000.safetensors", "evil_sep_mod.Model")
    with pytest.raises(UserError, match="not one of the known Demucs classes.*--trust-separator"):
        separator_from_option(str(evil), cache_dir=tmp_path / "cache").load_model()
    assert not marker.exists()
    # the known class loads without trust
    good = tiny_htdemucs_safetensors(tmp_path / "good.safetensors", "demucs.htdemucs.HTDemucs")
    assert "vocals" in separator_from_option(str(good), cache_dir=tmp_path / "cache").load_model().sources
    # the user's opt-in is what lets the evil module be imported
    monkeypatch.setenv("SINGERBENCH_TRUST", "separator")
    separator_from_option(str(evil), cache_dir=tmp_path / "cache").load_model()
    assert marker.exists()
    sys.modules.pop("evil_sep_mod", None)


def test_a_pickled_separator_checkpoint_needs_trust(tmp_path):
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state

    from singerbench.separation import separator_from_option

    marker = tmp_path / "pwned"
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=4, depth=3, nfft=1024,
                     samplerate=8000, segment=1, t_layers=1, t_heads=1, dconv_comp=2)
    args, kwargs = model._init_args_kwargs
    package = {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None, False),
               "training_args": Payload(marker)}
    torch.save(package, tmp_path / "evil-00000000.th")
    with pytest.raises(UserError, match="could run code when unpickled.*--trust-separator"):
        separator_from_option(str(tmp_path / "evil-00000000.th")).load_model()
    assert not marker.exists()
    package["training_args"] = {}
    torch.save(package, tmp_path / "fine-00000000.th")  # known class and plain data: loads safely
    assert separator_from_option(str(tmp_path / "fine-00000000.th")).load_model() is not None


def test_unknown_separator_repos_are_refused(tmp_path, tiny_synth, test_cache, capsys):
    from singerbench.separation import KNOWN_SEPARATORS, separator_from_option

    assert "mdx_extra" in KNOWN_SEPARATORS
    with pytest.raises(UserError, match="neither a known Demucs model.*--trust-separator"):
        separator_from_option("attacker/evil")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "synth").symlink_to(test_cache / "synth")
    code = main(["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", "--cache-dir", str(cache),
                 "--separator", "attacker/evil", "--no-progress", "-o", str(tmp_path / "r.json")])
    line = one_error_line(code, capsys.readouterr().err)
    assert "attacker/evil" in line and not (tmp_path / "r.json").exists()
