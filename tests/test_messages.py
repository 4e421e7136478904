"""What a user reads: progress lines off a terminal, hints for near-miss options, --debug, torchaudio, separators."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from singerbench import progress as progress_module
from singerbench.cli import main
from singerbench.run import DEFAULT_SEPARATOR


@pytest.fixture
def cache(shared_corpus_cache) -> Path:
    """A cache root sharing the rendered tiny corpus, with a fresh embedding store."""
    return shared_corpus_cache


def test_off_a_terminal_run_logs_its_stages(tmp_path, cache, tiny_synth, capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_INTERVAL", 0.0)  # every update is "due": shows the heartbeat lines
    # an impossible class count stops the run right after embedding, in one line, with the embeddings kept
    code = main(["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", "--preset", "quick",
                 "--class-counts", "99", "--cache-dir", str(cache), "--no-progress", "-o", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines()[-1].startswith("error: class count 99 is out of range"), err
    lines = err.splitlines()
    n = sum(len(t.vocal_offsets) for t in tiny_synth.tracks)
    assert any(line.startswith(f"embedding (mfcc): started ({n} seg)") for line in lines), err
    assert any(line.startswith("embedding (mfcc): at ") for line in lines)
    assert any(line.startswith(f"embedding (mfcc): done {n}/{n} seg") for line in lines)


def test_the_protocol_logs_runs_and_epochs(caplog, monkeypatch):
    from dataclasses import replace

    from test_protocol import SMALL, make_data

    from singerbench.protocol import run_protocol

    monkeypatch.setattr(progress_module, "LOG_INTERVAL", 0.0)
    with caplog.at_level(logging.INFO, logger="singerbench.progress"):
        run_protocol(make_data(n_singers=4), replace(SMALL, max_epochs=3, steps_per_epoch=4), runs=2,
                     progress=False)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "protocol: started (2 run)"
    assert "protocol: at 0/2 run" in messages[1] and "run=0, epoch=1, val_loss=" in messages[1]
    assert any("run=1, epoch=3" in m for m in messages)
    assert messages[-1].startswith("protocol: done 2/2 run")


def test_the_heartbeat_is_bounded(caplog):
    with caplog.at_level(logging.INFO, logger="singerbench.progress"):
        for _ in progress_module.progress(range(10_000), "counting", bar=False, interval=3600):
            pass
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "counting: started (10000 it)" and messages[-1].startswith("counting: done 10000/10000 it")
    assert len(messages) == 2  # nothing in between: the interval had not passed


def test_near_misses_point_to_the_right_option(tmp_path, capsys):
    assert main(["run", "--model", "mfcc", "--preset", "tiny"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "write --synth-preset tiny" in err
    assert main(["run", "--model", "mfcc", "--dataset", "fma", "-o", str(tmp_path / "r.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs --data-root DIR" in err and "--splits PATH" in err


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "m.json"
    bad.write_text('{"format": "singerbench-manifest/1", "singers": 3, "tracks": []}')
    args = ["run", "--model", "mfcc", "--dataset", "closed", "--manifest", str(bad)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: manifest") and "'name' must be str" in err
    assert main(["--debug", *args]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: manifest")
    monkeypatch.setenv("SINGERBENCH_DEBUG", "1")
    assert main(args) == 1
    assert "Traceback" in capsys.readouterr().err


def test_a_plugin_whose_torchaudio_cannot_load_gets_the_fix(tmp_path, capsys, monkeypatch):
    """The failure as PyPI's torchaudio raises it beside CPU torch: an OSError from inside the package."""
    pkg = tmp_path / "site" / "torchaudio"
    (pkg / "lib").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import os\n"
        "raise OSError('Could not load this library: ' + os.path.join(os.path.dirname(__file__), 'lib', "
        "'_torchaudio.so'))\n"
    )
    dist = tmp_path / "site" / "torchaudio-2.11.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: torchaudio\nVersion: 2.11.1\n")
    plugin = tmp_path / "crepe_like.py"
    plugin.write_text("import torchaudio\nfrom singerbench.baselines.mfcc import MFCCEmbedder as Pitchy\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "torchaudio", raising=False)
    assert main(["validate", f"{plugin}:Pitchy"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "torchaudio 2.11.1 cannot load beside torch" in err and f"rm {pkg / 'lib'}/*.so" in err


def test_the_default_separator_is_the_references_and_local_weights_are_accepted(tmp_path):
    pytest.importorskip("demucs")
    from test_separation import save_tiny_htdemucs

    from singerbench.errors import UserError
    from singerbench.run import make_separator

    assert DEFAULT_SEPARATOR == "mdx_extra"
    repo = tmp_path / "repo"
    save_tiny_htdemucs(repo)
    by_folder = make_separator(str(repo), tmp_path / "cache", "cpu")
    by_bag = make_separator(str(repo / "tiny.yaml"), tmp_path / "cache", "cpu")
    by_file = make_separator(str(next(repo.glob("*.th"))), tmp_path / "cache", "cpu")
    assert by_folder.separator_weights_id() == by_bag.separator_weights_id()
    assert by_file.load_model() is not None and by_folder.load_model() is not None
    (repo / "other.yaml").write_text("models: ['tiny0000']\n")
    with pytest.raises(UserError, match="name one of them"):
        make_separator(str(repo), None, "cpu")
