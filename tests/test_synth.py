"""The generated-singers corpus: layout, exact stems, true vocal activity, caching, determinism, and the two
findings it must make testable (the backing confound, and identity living in the voice)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singerbench.datasets import get_dataset
from singerbench.errors import UserError
from singerbench.manifest import Manifest
from singerbench.synthgen import MIN_ACTIVE_SHARE, PRESETS, SEGMENT_SECONDS, SINGER_IDS, render_corpus
from singerbench.synthgen.corpus import plan

TINY = PRESETS["tiny"]


def _read(path: Path) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(path), dtype="float64")
    return x, sr


def _files(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- features for the two classifier tests: log-mel band means and deviations, plain numpy ------------------


def _mel_filterbank(sr: int, n_fft: int, n_mels: int = 40, fmin: float = 50.0) -> np.ndarray:
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    pts = mel2hz(np.linspace(hz2mel(fmin), hz2mel(sr / 2), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, c, hi = pts[i : i + 3]
        fb[i] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0.0, None)
    return fb


def _logmel_stats(x: np.ndarray, sr: int, loud_only: bool) -> np.ndarray:
    n_fft, hop = 512, 256
    n = (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    power = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)) ** 2
    logmel = np.log(power @ _mel_filterbank(sr, n_fft).T + 1e-10)
    if loud_only:  # frames where the voice sings
        e = power.sum(axis=1)
        logmel = logmel[e > np.percentile(e, 99) * 1e-3]
    return np.concatenate([logmel.mean(axis=0), logmel.std(axis=0)])


def _nearest_centroid(train_x: np.ndarray, train_y: list[str], test_x: np.ndarray) -> list[str]:
    mu, sd = train_x.mean(axis=0), train_x.std(axis=0) + 1e-9
    z, t = (train_x - mu) / sd, (test_x - mu) / sd
    labels = sorted(set(train_y))
    y = np.array(train_y)
    centroids = np.stack([z[y == lab].mean(axis=0) for lab in labels])
    dist = ((t[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return [labels[i] for i in dist.argmin(axis=1)]


def _features(tracks, kind: str) -> np.ndarray:
    rows = []
    for t in tracks:
        x, sr = _read(t.stem(kind))
        rows.append(_logmel_stats(x, sr, loud_only=(kind == "vocals")))
    return np.stack(rows)


# --- the corpus ------------------------------------------------------------------------------------------------


def test_manifest_has_the_protocol_roles(tiny_synth: Manifest) -> None:
    m = tiny_synth
    assert m.name == "synth" and m.generated and "enerated" in m.description
    assert m.singers == list(SINGER_IDS) and len(m.singers) == 10
    roles = Counter((t.role, t.singers[0]) for t in m.tracks if len(t.singers) == 1)
    for s in m.singers:
        assert roles[("train", s)] == TINY.train >= 3
        assert roles[("val", s)] == 1 and roles[("test", s)] == 1
        assert roles[("cloned", s)] == TINY.clones
    duets = [t for t in m.tracks if len(t.singers) == 2]
    assert len(duets) == TINY.duets >= 1 and all(t.role == "cloned" for t in duets)
    for t in m.by_role("cloned"):
        ctx = t.extra["context_singer"]
        assert ctx in m.singers and ctx not in t.singers
        assert set(t.extra["clone"]) == set(t.singers)
    for t in m.tracks:
        assert t.audio.is_file() and t.vocals.is_file() and t.instrumental.is_file()
        assert len(t.vocal_offsets) >= (1 if t.role == "train" else 2)
        if t.role != "cloned":  # tiny keeps the full confound: every real song in its singer's home style
            assert t.extra["context_singer"] == t.singers[0] and t.extra["in_home_style"]
        assert t.genre and t.language and t.extra["engines"] == ["festival"] * len(t.singers)
        assert lo_le(TINY.var_db[0], t.extra["var_db"], TINY.var_db[1])
        info = sf.info(str(t.audio))
        assert info.samplerate >= 16000 and info.channels == 1
    n_tracks = len(SINGER_IDS) * (TINY.train + TINY.val + TINY.test + TINY.clones) + TINY.duets
    assert len(plan(TINY, 0)) == len(m.tracks) == n_tracks


def lo_le(lo: float, x: float, hi: float) -> bool:
    return lo <= x <= hi


def test_stems_sum_to_the_mixture(tiny_synth: Manifest) -> None:
    for t in tiny_synth.tracks:
        v, sr = _read(t.vocals)
        a, _ = _read(t.instrumental)
        x, _ = _read(t.audio)
        assert v.shape == a.shape == x.shape
        np.testing.assert_allclose(v + a, x, atol=1e-6)
        assert np.abs(v).max() > 0.01 and np.abs(a).max() > 0.01


def test_stems_that_cancel_in_the_mix_still_fit_int16() -> None:
    """Where the two stems cancel, each peaks above the mix: normalising on the mix alone wrapped them."""
    from singerbench.synthgen.mix import FULL_SCALE, PEAK, mix

    sr = 16000
    t = np.arange(sr * 2) / sr
    voice = np.sin(2 * np.pi * 220 * t)
    backing = -0.97 * voice + 0.01 * np.sin(2 * np.pi * 55 * t)  # nearly the voice, inverted
    vq, aq, mq = mix(voice, backing, 0.0, sr)
    assert np.array_equal(vq.astype(np.int32) + aq.astype(np.int32), mq.astype(np.int32))
    assert max(np.abs(vq.astype(np.int32)).max(), np.abs(aq.astype(np.int32)).max()) == FULL_SCALE
    assert np.abs(mq.astype(np.int32)).max() < PEAK * FULL_SCALE  # the mix is quieter than usual, not clipped
    # a mix whose stems fit keeps the usual normalisation: its peak at PEAK of full scale
    _, _, usual = mix(voice, 0.5 * np.sin(2 * np.pi * 55 * t), 0.0, sr)
    assert np.abs(usual.astype(np.int32)).max() == round(PEAK * FULL_SCALE)


def test_vocal_offsets_lie_where_the_vocal_stem_is_active(tiny_synth: Manifest) -> None:
    """Recompute activity from the vocal stem's energy (20 ms frames within 35 dB of the loud frames)."""
    for t in tiny_synth.tracks:
        v, sr = _read(t.vocals)
        hop = int(0.02 * sr)
        frames = v[: len(v) // hop * hop].reshape(-1, hop)
        rms = np.sqrt((frames**2).mean(axis=1))
        active = rms > np.percentile(rms, 99) * 10 ** (-35 / 20)
        starts = list(t.vocal_offsets)
        assert starts == sorted(starts)
        for a, b in zip(starts, starts[1:], strict=False):
            assert b - a >= SEGMENT_SECONDS - 1e-9  # non-overlapping
        for off in starts:
            assert off >= 0 and off + SEGMENT_SECONDS <= len(v) / sr + 1e-9
            i = int(round(off / 0.02))
            share = active[i : i + int(SEGMENT_SECONDS / 0.02)].mean()
            assert share >= MIN_ACTIVE_SHARE, (t.id, off, share)
        # and the instrumental-only intro is not listed as a whole segment of silence
        assert active.mean() > 0.3


def test_backing_alone_names_the_home_singer_and_clones_point_to_the_context(tiny_synth: Manifest) -> None:
    """The confound: instrumental-stem features predict the singer on real tracks, the context on clones."""
    m = tiny_synth
    train = [t for t in m.tracks if t.role in ("train", "val")]
    model_x, model_y = _features(train, "instrumental"), [t.singers[0] for t in train]
    test = m.by_role("test")
    pred = _nearest_centroid(model_x, model_y, _features(test, "instrumental"))
    acc = np.mean([p == t.singers[0] for p, t in zip(pred, test, strict=True)])
    assert acc >= 0.7  # chance is 0.1
    clones = m.by_role("cloned")
    pred = _nearest_centroid(model_x, model_y, _features(clones, "instrumental"))
    to_context = np.mean([p == t.extra["context_singer"] for p, t in zip(pred, clones, strict=True)])
    to_target = np.mean([p in t.singers for p, t in zip(pred, clones, strict=True)])
    assert to_context >= 0.7 and to_target <= 0.2


def test_identity_lives_in_the_voice(tiny_synth: Manifest) -> None:
    """Nearest centroid on log-mel statistics of vocal stems names the singer well above chance."""
    m = tiny_synth
    train = m.by_role("train")
    held = m.by_role("val") + m.by_role("test")
    pred = _nearest_centroid(_features(train, "vocals"), [t.singers[0] for t in train], _features(held, "vocals"))
    acc = np.mean([p == t.singers[0] for p, t in zip(pred, held, strict=True)])
    assert acc >= 0.5  # chance is 0.1


# --- caching, resume, determinism ----------------------------------------------------------------------------


def test_second_load_renders_nothing(tiny_synth: Manifest, test_cache: Path) -> None:
    from singerbench.datasets.synth import corpus_dir, load

    folder = corpus_dir("tiny", 0, test_cache)
    before = _files(folder)
    again = load(preset="tiny", seed=0, cache_dir=test_cache, progress=False)
    assert _files(folder) == before  # no file rewritten (same mtimes, same bytes)
    assert again.checksum() == tiny_synth.checksum() and again.tracks == tiny_synth.tracks


def test_same_seed_gives_identical_bytes_and_resume_rerenders_only_what_is_missing(
    tiny_synth: Manifest, tmp_path: Path
) -> None:
    """Render one singer's tracks twice (2 processes, then 1) and against the session corpus: same bytes."""
    a, b = tmp_path / "a", tmp_path / "b"
    render_corpus("tiny", 0, a, progress=False, workers=2, singers=["kal"])
    render_corpus("tiny", 0, b, progress=False, workers=1, singers=["kal"])
    fa, fb = _files(a), _files(b)
    assert {k: v[1] for k, v in fa.items()} == {k: v[1] for k, v in fb.items()}
    session = tiny_synth.root
    for rel, (_, data) in fa.items():
        if rel.startswith("tracks/"):
            assert (session / rel).read_bytes() == data, rel  # same track whatever else is rendered
    doc = json.loads((a / "manifest.json").read_text())
    assert doc["singers"] == ["kal"] and {t["singers"][0] for t in doc["tracks"]} == {"kal"}

    # interrupted render: the marker and one track are gone; only that track is rendered again
    (a / "complete.json").unlink()
    shutil.rmtree(a / "tracks" / "kal-test00")
    render_corpus("tiny", 0, a, progress=False, workers=1, singers=["kal"])
    after = _files(a)
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in fa.items()}
    kept = [k for k in fa if k.startswith("tracks/") and not k.startswith("tracks/kal-test00/")]
    assert kept and all(after[k][0] == fa[k][0] for k in kept)


def test_a_folder_with_another_corpus_is_refused(tiny_synth: Manifest, tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text(json.dumps({"preset": "small", "seed": 3, "generator_version": "0"}))
    with pytest.raises(UserError, match="different synth corpus"):
        render_corpus("tiny", 0, tmp_path, progress=False, singers=["kal"])


def test_user_mistakes_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="preset"):
        render_corpus("huge", 0, tmp_path)
    with pytest.raises(UserError, match="singer"):
        render_corpus("tiny", 0, tmp_path, singers=["nobody"])


def test_missing_system_packages_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from singerbench.synthgen import backing, check_system, system

    check_system()  # everything is installed here
    monkeypatch.setattr(system.shutil, "which", lambda name: None)
    monkeypatch.setattr(backing, "SOUNDFONT", Path("/nonexistent.sf2"))
    with pytest.raises(UserError) as e:
        check_system()
    msg = str(e.value)
    assert "\n" not in msg
    assert "apt-get install -y festival festvox-kallpc16k" in msg and "fluidsynth fluid-soundfont-gm" in msg
    assert "missing (festival, fluidsynth, fluid-soundfont-gm)" in msg


def test_adapter_is_registered_and_ready(tiny_synth: Manifest, test_cache: Path) -> None:
    adapter, implied = get_dataset("synth")
    assert implied == {} and {"preset", "seed", "cache_dir", "progress"} <= adapter.accepted_options()
    ready, message = adapter.status(preset="tiny", seed=0, cache_dir=test_cache)
    assert ready and "rendered" in message
    ready, message = adapter.status(preset="nope")
    assert not ready and "preset" in message


def test_datasets_names_missing_voice_packages_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """When MBROLA's voices are gone, `singerbench datasets` says how many singers remain and what to install."""
    from click.testing import CliRunner

    from singerbench.cli import cli
    from singerbench.synthgen import engines

    monkeypatch.setattr(engines, "MBROLA_ROOT", Path("/nonexistent-mbrola"))
    out = CliRunner().invoke(cli, ["datasets"]).output
    line = next(row for row in out.splitlines() if row.startswith("synth"))
    assert "mbrola-us1" in line and "apt-get install -y" in line and "contrib and non-free" in line
    assert f"large: {len(PRESETS['large'].singers())} singers installed" in line
