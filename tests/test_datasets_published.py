"""The fma and mtg adapters on miniatures of the real layouts: real metadata rows from ../shared/data, generated
audio written as mp3 at the real relative paths, split files in the published layout (folder and splits.zip).

``build_miniature`` is reusable: ``python tests/test_datasets_published.py OUT_DIR`` writes both miniatures,
ready for ``singerbench run --dataset mtg --data-root OUT_DIR/mtg/audio --splits OUT_DIR/mtg/splits.zip``.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from shared_data import SHARED_DATA

from singerbench.datasets import load_dataset
from singerbench.errors import UserError
from singerbench.splitbuilder import build_splits, write_published

SHARED = SHARED_DATA
METADATA = {"mtg": SHARED / "mtg" / "mtg_jamendo_tracks.tsv.gz", "fma": SHARED / "fma" / "raw_tracks_excerpt.csv"}
SR = 16000


def singer_tone(artist_index: int, seconds: float, seed: int) -> np.ndarray:
    """A deterministic 'singer': harmonic tone at an artist-specific pitch and timbre, with vibrato and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 110.0 * 2 ** ((artist_index * 5 % 24) / 12)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))) / SR
    tilt = 0.5 + 0.4 * (artist_index % 3) / 2
    wave = sum(tilt**k * np.sin((k + 1) * phase) for k in range(8))
    wave = wave * (0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t) ** 2) + 0.05 * rng.standard_normal(t.size)
    return (0.8 * wave / np.abs(wave).max()).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _metadata_split(dataset: str, seed: int) -> dict[str, dict]:
    return build_splits(dataset, METADATA[dataset], None, seed=seed)[0]


def build_miniature(
    dataset: str, out: Path, n_artists: int = 4, seconds: float = 13.0, seed: int = 0
) -> dict[str, Path]:
    """A miniature of ``dataset`` (mtg or fma) under ``out``: audio, split folder and splits.zip.

    The split comes from the real metadata through the split builder (metadata-only mode) restricted to the
    first ``n_artists`` singers with exactly five to seven tracks; offsets are capped to fit ``seconds``.
    """
    out = Path(out)
    docs = copy.deepcopy(_metadata_split(dataset, seed))
    sizes = {a: len(v["track"] if dataset == "fma" else v) for a, v in docs["train"].items()}
    artists = [a for a in docs["train"] if 3 <= sizes[a] <= 5][:n_artists]
    keep = {role: {a: docs[role][a] for a in artists} for role in docs}
    audio_root = out / "audio"
    fma_root = audio_root / "fma_full"
    n_segs = int(seconds // 6)
    for doc in keep.values():
        for i, artist in enumerate(artists):
            value = doc[artist]["track"] if dataset == "fma" else doc[artist]
            for item in value if isinstance(value, list) else [value]:
                item["vocal_segs"] = [6.0 * k for k in range(n_segs)]
                fid = item["file_id"]
                path = fma_root / fid[:3] / fid if dataset == "fma" else audio_root / fid
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(path, singer_tone(i, seconds, seed + zlib.crc32(fid.encode()) % 1000), SR, format="MP3")
    folder = out / "splits"
    write_published(dataset, keep, folder)
    write_published(dataset, keep, out / "splits.zip")
    return {"data_root": audio_root, "splits": folder, "zip": out / "splits.zip"}


@pytest.fixture(scope="module", params=["mtg", "fma"])
def mini(request, tmp_path_factory) -> tuple[str, dict[str, Path]]:
    ds = request.param
    return ds, build_miniature(ds, tmp_path_factory.mktemp(ds))


def _expected(ds: str, paths: dict[str, Path]) -> tuple[list[str], dict[str, list[str]]]:
    train = json.loads((paths["splits"] / f"{ds}_train_set.json").read_text())
    return list(train), {
        a: [t["file_id"] for t in (v["track"] if ds == "fma" else v)] for a, v in train.items()
    }


@pytest.mark.parametrize("source", ["splits", "zip"])
def test_miniature_loads(mini, source):
    ds, paths = mini
    m = load_dataset(ds, data_root=paths["data_root"], splits=paths[source])
    artists, train = _expected(ds, paths)
    assert m.singers == artists  # class index = key order of the train file
    assert len(m.by_role("val")) == len(m.by_role("test")) == len(artists)
    assert sum(len(v) for v in train.values()) == len(m.by_role("train"))
    for t in m.tracks:
        assert t.audio.is_file()
        assert t.vocal_offsets == (0.0, 6.0)
        wave, sr = sf.read(t.audio)
        assert sr == SR and wave.size > 12 * SR
    first = m.by_role("train")[0]
    fid = train[artists[0]][0]
    assert first.singers == (artists[0],)
    if ds == "fma":
        assert first.audio == paths["data_root"] / "fma_full" / fid[:3] / fid
    else:
        assert first.audio == paths["data_root"] / fid
    assert first.id == Path(fid).stem


def test_default_splits_found_in_data_root(mini, tmp_path):
    ds, paths = mini
    m = load_dataset(ds, data_root=paths["data_root"], splits=paths["zip"])
    assert m.checksum() == load_dataset(ds, data_root=paths["data_root"], splits=paths["splits"]).checksum()


def _copy_splits(ds: str, paths: dict[str, Path], dst: Path) -> dict[str, dict]:
    dst.mkdir()
    docs = {}
    for role in ("train", "val", "test"):
        docs[role] = json.loads((paths["splits"] / f"{ds}_{role}_set.json").read_text())
    return docs


def _write(ds: str, dst: Path, docs: dict[str, dict]) -> Path:
    for role, doc in docs.items():
        (dst / f"{ds}_{role}_set.json").write_text(json.dumps(doc))
    return dst


def test_wrong_shape(mini, tmp_path):
    ds, paths = mini
    docs = _copy_splits(ds, paths, tmp_path / "s")
    a = next(iter(docs["test"]))
    docs["test"][a] = [docs["test"][a]]  # a list where one track is expected
    with pytest.raises(UserError, match="expected"):
        load_dataset(ds, data_root=paths["data_root"], splits=_write(ds, tmp_path / "s", docs))


def test_artist_not_in_train(mini, tmp_path):
    ds, paths = mini
    docs = _copy_splits(ds, paths, tmp_path / "s")
    a = next(iter(docs["test"]))
    docs["test"]["stranger"] = docs["test"][a]
    with pytest.raises(UserError, match="stranger is in the test split file but not in the train file"):
        load_dataset(ds, data_root=paths["data_root"], splits=_write(ds, tmp_path / "s", docs))


def test_empty_vocal_segments(mini, tmp_path):
    ds, paths = mini
    docs = _copy_splits(ds, paths, tmp_path / "s")
    a = next(iter(docs["val"]))
    (docs["val"][a]["track"] if ds == "fma" else docs["val"][a])["vocal_segs"] = []
    with pytest.raises(UserError, match="empty vocal segment list"):
        load_dataset(ds, data_root=paths["data_root"], splits=_write(ds, tmp_path / "s", docs))


def test_missing_audio_counted_then_dropped(mini, tmp_path, caplog):
    ds, paths = mini
    m = load_dataset(ds, data_root=paths["data_root"], splits=paths["zip"])
    victim = m.by_role("test")[0]
    backup = tmp_path / "backup.mp3"
    victim.audio.rename(backup)
    try:
        with pytest.raises(UserError, match=rf"1 of {len(m.tracks)} audio files are missing.*{victim.audio.name}"):
            load_dataset(ds, data_root=paths["data_root"], splits=paths["zip"])
        dropped = load_dataset(ds, data_root=paths["data_root"], splits=paths["zip"], drop_small=True)
    finally:
        backup.rename(victim.audio)
    assert victim.singers[0] not in dropped.singers
    assert len(dropped.singers) == len(m.singers) - 1
    assert dropped.extra["dropped_singers"] == 1 and dropped.extra["dropped_missing_audio"] == 1
    assert "dropped 1 tracks with missing audio and 1 of" in caplog.text


def test_too_few_train_tracks(mini):
    ds, paths = mini
    with pytest.raises(UserError, match="fall below the minimum"):
        load_dataset(ds, data_root=paths["data_root"], splits=paths["splits"], min_train_tracks=50)
    with pytest.raises(UserError, match="no singer of"):
        load_dataset(ds, data_root=paths["data_root"], splits=paths["splits"], min_train_tracks=50, drop_small=True)


def test_no_minimum_of_training_songs_by_default_and_one_option_sets_one(mini, tmp_path):
    """The reference keeps every artist of the split files: one training song is enough unless a user asks more."""
    ds, paths = mini
    docs = _copy_splits(ds, paths, tmp_path / "s")
    lone = next(iter(docs["train"]))
    tracks = docs["train"][lone]["track"] if ds == "fma" else docs["train"][lone]
    del tracks[1:]  # this singer keeps a single training song
    splits = _write(ds, tmp_path / "s", docs)
    m = load_dataset(ds, data_root=paths["data_root"], splits=splits)
    assert lone in m.singers and len([t for t in m.by_role("train") if t.singers == (lone,)]) == 1
    # -D min_train_tracks=2 arrives as a string; it is typed by the option's default, not a TypeError
    with pytest.raises(UserError, match=rf"1 singers fall below the minimum \(2 train.*artist {lone} with 1 train"):
        load_dataset(ds, data_root=paths["data_root"], splits=splits, min_train_tracks="2")
    dropped = load_dataset(ds, data_root=paths["data_root"], splits=splits, min_train_tracks=2, drop_small=True)
    assert dropped.singers == [a for a in m.singers if a != lone]
    with pytest.raises(UserError, match="dataset option min_train_tracks expects an integer, got 'two'"):
        load_dataset(ds, data_root=paths["data_root"], splits=splits, min_train_tracks="two")


def test_bad_sources(mini, tmp_path):
    ds, paths = mini
    with pytest.raises(UserError, match="needs --data-root"):
        load_dataset(ds, splits=paths["zip"])
    with pytest.raises(UserError, match="none of the"):
        load_dataset(ds, data_root=tmp_path, splits=paths["zip"])
    bad = tmp_path / "splits.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("README.md", "nothing")
    with pytest.raises(UserError, match="holds no"):
        load_dataset(ds, data_root=paths["data_root"], splits=bad)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / f"{ds}_train_set.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON|holds no"):
        load_dataset(ds, data_root=paths["data_root"], splits=tmp_path / "x")
    with pytest.raises(UserError, match="does not take --nonsense"):
        load_dataset(ds, data_root=paths["data_root"], nonsense=1)


def test_status(mini):
    from singerbench.datasets import all_datasets

    ds, paths = mini
    adapter = all_datasets()[ds]
    ok, msg = adapter.status(data_root=paths["data_root"], splits=paths["zip"])
    assert ok, msg
    ok, msg = adapter.status()
    assert not ok and "split files" in msg


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "miniatures")
    for name in ("mtg", "fma"):
        built = build_miniature(name, target / name)
        print(f"{name}: --data-root {built['data_root']} --splits {built['zip']}")
