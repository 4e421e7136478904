"""The similarity probe and `run --sweep/--probe` on the tiny generated corpus, with real stems and a real model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_run import QUICK, cache, run_cli  # noqa: F401  (cache is a fixture)

from singerbench.baselines.mfcc import MFCCEmbedder
from singerbench.run import track_info
from singerbench.segments import SegmentSource
from singerbench.similarity import PAIRS, StemSource, embed_stems, probe_tracks, similarities
from singerbench.store import EmbeddingStore


def test_stem_embeddings_are_stored_once_and_measured_against_the_right_tracks(tiny_synth, tmp_path):
    embedder = MFCCEmbedder()
    store = EmbeddingStore(tmp_path / "store")
    subjects = probe_tracks(tiny_synth, ["test"])[:2]
    assert subjects and all(t.vocals and t.instrumental for t in subjects)
    train = tiny_synth.by_role("train")
    table = store.embed(embedder, tiny_synth, SegmentSource.for_embedder(embedder), tracks=[*subjects, *train],
                        progress=False)
    stems, counters = embed_stems(store, embedder, tiny_synth, subjects, batch_size=8, device="cpu", progress=False)
    n = sum(len(t.vocal_offsets) for t in subjects)
    assert counters == {"computed": 2 * n, "reused": 0}
    _, again = embed_stems(store, embedder, tiny_synth, subjects, batch_size=8, device="cpu", progress=False)
    assert again == {"computed": 0, "reused": 2 * n}  # a second probe is a store hit
    # the stems are not the mixture: their embeddings differ from the model's own input
    t0 = subjects[0]
    assert not np.allclose(stems["vocals"].for_track(t0.id), table.for_track(t0.id))
    assert not np.allclose(stems["vocals"].for_track(t0.id), stems["instrumental"].for_track(t0.id))

    sims = similarities(tiny_synth, table, stems, ["test"])["test"]
    assert sims["tracks"] == 2 and set(sims["means"]) == set(PAIRS)
    # direct computation of one number: mean cosine of the track's segments with its own vocal stem, same offsets
    e, v = table.for_track(t0.id).astype(float), stems["vocals"].for_track(t0.id).astype(float)
    direct = np.mean(np.sum(e * v, axis=1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(v, axis=1)))
    assert sims["per_track"][t0.id]["vocal_stem"] == pytest.approx(direct)
    assert StemSource(embedder, "vocals").stem_id(t0) == "dataset"  # a vocals plugin's own key for this stem


def test_track_info_records_genre_language_and_training_songs(tiny_synth):
    info = track_info(tiny_synth)
    assert set(info) == {t.id for t in tiny_synth.tracks if t.role in ("test", "cloned")}
    t = tiny_synth.by_role("test")[0]
    songs = sum(1 for x in tiny_synth.by_role("train") if x.singers == t.singers)
    assert info[t.id] == {"genre": t.genre, "language": t.language, "train_songs": songs}


@pytest.mark.slow  # about 2 minutes on 2 busy cores (one quick protocol run plus stems)
def test_run_sweep_and_probe_then_report(tiny_synth, cache, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "mfcc.json"
    args = ["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", *QUICK, *cache]
    code, _, err = run_cli([*args, "--sweep", "--class-counts", "4,10", "-o", str(out)], capsys)
    assert code == 1 and "--sweep and --class-counts" in err and not out.exists()
    code, _, err = run_cli([*args, "--sweep", "--probe", "--runs", "1", "-o", str(out)], capsys)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["class_counts"] == [len(tiny_synth.singers)]  # 10 singers: the sweep's only step that fits
    assert set(doc["verification"]) == {"test", "cloned"} and set(doc["similarity"]["sets"]) == {"test", "cloned"}
    assert doc["track_info"] and doc["store"]["computed"] > 0
    means = doc["similarity"]["sets"]["test"]["means"]
    assert all(-1 <= means[p] <= 1 for p in PAIRS)

    site = tmp_path / "site"
    code, stdout, err = run_cli(["report", str(out), "--out", str(site), "--dataset", "synth", "--synth-preset",
                                 "tiny", *cache], capsys)
    assert code == 0, err
    figures = sorted(p.name for p in (site / "figures").iterdir())
    assert [f.split("-", 3)[-1] for f in figures] == [
        "10-context-probe.svg", "10-fig1-classes.svg", "10-fig2a-genre.svg", "10-fig2b-language.svg",
        "10-fig3-train_songs.svg", "10-fig4-similarity.svg"]
    assert "Context probe" in stdout and "Similarity probe" in stdout


def test_probe_on_a_dataset_without_stems_stops_before_any_work(tmp_path, capsys):
    from test_datasets_published import build_miniature

    mini = build_miniature("mtg", tmp_path / "mini")
    code, _, err = run_cli(
        ["run", "--model", "mfcc", "--dataset", "mtg", "--data-root", str(mini["data_root"]), "--splits",
         str(mini["splits"]), *QUICK, "--probe", "--cache-dir", str(tmp_path / "cache"), "--no-progress",
         "-o", str(tmp_path / "r.json")], capsys)
    assert code == 1 and "--probe needs eval tracks with both a vocal and an instrumental stem" in err
    # the write probe may create the cache folder; no embedding was computed and no result written
    assert not list((tmp_path / "cache").rglob("*.npy")) and not (tmp_path / "r.json").exists()
