"""Every failure ends in one line and keeps the work done: damaged stores, full and read-only disks, bad plugins,
malformed files (fuzzed), and two runs sharing one cache."""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import logging
import os
import random
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_store import make_manifest, run

from singerbench.cli import main
from singerbench.errors import UserError
from singerbench.manifest import Manifest
from singerbench.store import EmbeddingStore

REPO = Path(__file__).resolve().parents[1]
SINGERBENCH = str(Path(sys.executable).parent / "singerbench")




@pytest.fixture
def cache(shared_corpus_cache) -> Path:
    """A cache root sharing the rendered tiny corpus, with a fresh embedding store."""
    return shared_corpus_cache


def one_error_line(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("WARNING", "warning"))]
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 1 and len(errors) == 1, err
    assert "Traceback" not in err and "unexpected" not in errors[0], err
    return errors[0]


@contextlib.contextmanager
def read_only(folder: Path):
    """Make ``folder`` unwritable for real: chmod for a normal user, the immutable attribute for root."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is not available: cannot make a folder read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


# --- the store survives damage ---------------------------------------------------------------------------

def _truncate_npy(npy: Path, meta: Path) -> None:
    npy.write_bytes(npy.read_bytes()[:-40])


def _truncate_index(npy: Path, meta: Path) -> None:
    meta.write_text(meta.read_text()[:30])


def _random_bytes(npy: Path, meta: Path) -> None:
    npy.write_bytes(np.random.default_rng(0).bytes(npy.stat().st_size))


def _too_few_rows(npy: Path, meta: Path) -> None:
    arr = np.load(npy)
    np.save(npy, arr[:-1])


def _array_missing(npy: Path, meta: Path) -> None:
    npy.unlink()


@pytest.mark.parametrize("damage", [_truncate_npy, _truncate_index, _random_bytes, _too_few_rows, _array_missing])
def test_a_damaged_shard_is_quarantined_and_recomputed(tmp_path, toy, damage, caplog):
    man = make_manifest(tmp_path, n_tracks=2)
    n = sum(len(t.vocal_offsets) for t in man.tracks)
    _, reference = run(tmp_path / "store", toy.Toy(), man, batch_size=4, flush_every=4)
    metas = sorted((tmp_path / "store").glob("*/shards/*.json"))
    assert len(metas) >= 3
    meta = metas[1]
    damage(meta.with_suffix(".npy"), meta)
    with caplog.at_level(logging.WARNING, logger="singerbench"):
        store, table = run(tmp_path / "store", toy.Toy(), man, batch_size=4)
    assert 0 < store.computed < n  # only the damaged shard's segments
    assert np.array_equal(table.vectors, reference.vectors)
    quarantined = list((tmp_path / "store").glob("*/quarantine/*"))
    assert meta.name in {p.name for p in quarantined}
    assert any(str(meta.with_suffix("")) in r.getMessage() and "quarantine" in r.getMessage() for r in caplog.records)
    again, _ = run(tmp_path / "store", toy.Toy(), man)
    assert again.computed == 0


def test_a_full_disk_ends_in_one_line_and_keeps_earlier_batches(tmp_path, toy, monkeypatch):
    man = make_manifest(tmp_path, n_tracks=3)
    n = sum(len(t.vocal_offsets) for t in man.tracks)
    _, reference = run(tmp_path / "ref", toy.Toy(), man)
    real_write, calls = EmbeddingStore.write_array, []

    def filling_disk(f, arr):  # the third shard meets a full disk, after writing some bytes
        calls.append(len(arr))
        if len(calls) >= 3:
            f.write(b"\x93NUMPY partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(f, arr)

    monkeypatch.setattr(EmbeddingStore, "write_array", staticmethod(filling_disk))
    with pytest.raises(UserError, match=r"the disk is full\. Embeddings written before are kept \(8 this run\)"):
        run(tmp_path / "store", toy.Toy(), man, batch_size=4, flush_every=4)
    monkeypatch.setattr(EmbeddingStore, "write_array", staticmethod(real_write))
    assert not list((tmp_path / "store").glob("*/shards/.*.part"))  # no half-written file left
    store, table = run(tmp_path / "store", toy.Toy(), man)
    assert store.reused == 8 and store.computed == n - 8
    assert np.array_equal(table.vectors, reference.vectors)


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_file_size_limit_ends_the_cli_in_one_line(tmp_path, cache, tiny_synth):
    """A real kernel refusal (RLIMIT_FSIZE in a subprocess) while the store writes: one line, exit 1."""
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [SINGERBENCH, "run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", "--preset", "quick",
         "--runs", "1", "--cache-dir", str(cache), "-o", str(out)],
        capture_output=True, text=True, preexec_fn=_limit_file_size(3000), timeout=300,
    )
    line = one_error_line(proc.returncode, proc.stderr)
    assert "cannot write" in line and "file size limit" in line and not out.exists()


def test_a_read_only_output_fails_before_any_work(tmp_path, cache, tiny_synth, capsys):
    out_dir = tmp_path / "results"
    with read_only(out_dir):
        code = main(["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", "--preset", "quick",
                     "--cache-dir", str(cache), "--no-progress", "-o", str(out_dir / "r.json")])
        line = one_error_line(code, capsys.readouterr().err)
    assert "cannot write the result" in line and str(out_dir) in line
    assert not list(cache.glob("embeddings/*/shards/*"))  # stopped before embedding anything
    assert not (out_dir / "r.json").exists()


def test_a_read_only_cache_fails_before_any_work(tmp_path, cache, tiny_synth, capsys):
    with read_only(cache / "embeddings"):
        code = main(["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", "--preset", "quick",
                     "--cache-dir", str(cache), "--no-progress", "-o", str(tmp_path / "r.json")])
        line = one_error_line(code, capsys.readouterr().err)
    assert "cannot write the embedding cache" in line and not (tmp_path / "r.json").exists()


# --- run refuses a batch-dependent plugin ---------------------------------------------------------------

BATCH_DEPENDENT = '''
import torch
from singerbench.embedder import Embedder

class BatchNormed(Embedder):
    name = "batchnormed"
    sample_rate = 16000
    channels = 1
    segment_seconds = 6.0
    embedding_dim = 4

    def embed(self, batch):
        x = batch[:, 0, :4000].reshape(batch.shape[0], 4, -1).pow(2).mean(-1)
        return (x - x.mean(0)) / (x.std(0) + 1e-6) if x.shape[0] > 1 else x  # statistics across the batch
'''


def test_run_refuses_a_batch_dependent_plugin_with_validates_message(tmp_path, cache, tiny_synth, capsys):
    from singerbench.validate import BATCH_DEPENDENCE

    plugin = tmp_path / "bn.py"
    plugin.write_text(BATCH_DEPENDENT)
    code = main(["validate", f"{plugin}:BatchNormed"])
    captured = capsys.readouterr()
    assert code == 1 and BATCH_DEPENDENCE in captured.err
    out = tmp_path / "r.json"
    code = main(["run", "--model", f"{plugin}:BatchNormed", "--dataset", "synth", "--synth-preset", "tiny",
                 "--preset", "quick", "--cache-dir", str(cache), "--no-progress", "-o", str(out)])
    line = one_error_line(code, capsys.readouterr().err)
    assert BATCH_DEPENDENCE in line and "nothing was stored" in line and not out.exists()
    assert not list(cache.glob("embeddings/*/shards/*.json"))


# --- two runs, one cache --------------------------------------------------------------------------------

COUNTING = '''
import sys, time
sys.path.insert(0, {folder!r})
import numpy as np
from toyplugin import Toy
from singerbench.manifest import Manifest
from singerbench.segments import SegmentSource
from singerbench.store import EmbeddingStore

class Counting(Toy):
    def embed(self, batch):
        with open({log!r}, "a") as f:  # one line per segment embedded, whichever process
            f.write("x\\n" * batch.shape[0])
        time.sleep(0.05)
        return super().embed(batch)

e = Counting()
store = EmbeddingStore({store!r})
table = store.embed(e, Manifest.from_json({manifest!r}), SegmentSource.for_embedder(e), batch_size=3,
                    flush_every=3, progress=False)
np.save(sys.argv[1], table.vectors)
print(store.computed, store.reused)
'''


def test_two_concurrent_runs_embed_each_segment_once(tmp_path, toy):
    man = make_manifest(tmp_path, n_tracks=4)
    man.to_json(tmp_path / "manifest.json")
    n = sum(len(t.vocal_offsets) for t in man.tracks)
    script = COUNTING.format(folder=str(tmp_path), log=str(tmp_path / "calls.log"), store=str(tmp_path / "store"),
                             manifest=str(tmp_path / "manifest.json"))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"out{i}.npy")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len((tmp_path / "calls.log").read_text().splitlines()) == n  # every segment embedded exactly once
    counts = sorted(tuple(map(int, o[0].split())) for o in outs)
    assert counts == [(0, n), (n, 0)]
    a, b = np.load(tmp_path / "out0.npy"), np.load(tmp_path / "out1.npy")
    assert np.array_equal(a, b)
    _, reference = run(tmp_path / "ref", toy.Toy(), Manifest.from_json(tmp_path / "manifest.json"))
    assert np.array_equal(a, reference.vectors)


# --- fuzz: malformed manifests and result files ---------------------------------------------------------

def _mutate(doc: object, rng: random.Random) -> object:
    """One random structural change somewhere in a JSON document."""
    doc = copy.deepcopy(doc)
    paths: list[tuple] = []

    def walk(node: object, path: tuple) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node[:3]):
                walk(v, (*path, i))

    walk(doc, ())
    path = rng.choice(paths[1:])
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    key = path[-1]
    op = rng.choice(["delete", "retype", "retype", "empty", "duplicate"])
    values = [None, 0, -1, 1e308, 3.5, "", "x" * 3, "../../etc", True, [], {}, [1, "a"], {"a": None}, -1e-9]
    if op == "delete":
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    elif op == "empty":
        parent[key] = type(parent[key])() if isinstance(parent[key], list | dict | str) else None
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    else:
        parent[key] = rng.choice(values)
    return doc


def _mutations(doc: dict, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(count):
        mutated = doc
        for _ in range(rng.randint(1, 3)):
            mutated = _mutate(mutated, rng)
        text = json.dumps(mutated)
        if i % 10 == 9:  # a truncated file now and then
            text = text[: rng.randint(0, len(text) - 1)]
        texts.append(text)
    return texts


def _check_outcome(code: int, err: str, label: str) -> None:
    if code == 0:
        return
    assert "Traceback" not in err, f"{label}: {err}"
    one_error_line(code, err)


def test_fuzzed_result_files_end_in_success_or_one_line(tmp_path, capsys):
    base = json.loads((REPO / "tests" / "data" / "result-v1-mfcc.json").read_text())
    # a smaller valid file (two runs, two tracks per eval set) keeps 110 schema validations fast
    base["run_details"] = base["run_details"][:2]
    for detail in base["run_details"]:
        for scored in detail["evals"].values():
            scored["tracks"] = scored["tracks"][:2]
    (tmp_path / "base.json").write_text(json.dumps(base))
    assert main(["leaderboard", str(tmp_path / "base.json"), "--out", str(tmp_path / "board")]) == 0
    capsys.readouterr()
    for i, text in enumerate(_mutations(base, 110, seed=1)):
        path = tmp_path / f"r{i}.json"
        path.write_text(text)
        code = main(["leaderboard", str(path), "--out", str(tmp_path / "board")])
        _check_outcome(code, capsys.readouterr().err, f"mutation {i}: {text[:300]}")


def test_fuzzed_manifests_end_in_success_or_one_line(tmp_path, tiny_synth, capsys):
    """Mutations of a valid closed-set manifest through `run`: the valid ones fail only at the model."""
    closed = Manifest(name="fuzzset", singers=tiny_synth.singers,
                      tracks=[t for t in tiny_synth.tracks if t.role != "cloned"])
    closed.to_json(tmp_path / "base.json")
    base = json.loads((tmp_path / "base.json").read_text())
    # An unknown --separator is refused after the dataset loads and before any embedding: a valid manifest
    # ends there with a known line, so 100+ runs stay fast.
    for i, text in enumerate(_mutations(base, 110, seed=2)):
        path = tmp_path / f"m{i}.json"
        path.write_text(text)
        code = main(["run", "--model", "mfcc", "--dataset", "closed", "--manifest", str(path), "--separator",
                     "no-such-separator", "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                     "-o", str(tmp_path / "out.json")])
        err = capsys.readouterr().err
        _check_outcome(code, err, f"mutation {i}: {text[:300]}")
        assert code == 1 and not (tmp_path / "out.json").exists()
