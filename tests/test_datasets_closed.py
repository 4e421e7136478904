"""Bring-your-own closed and cloned sets: CSV rows, JSON rows, the reference closed layout, and bad inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import soundfile as sf
from test_datasets_published import SR, singer_tone

from singerbench.datasets import load_dataset
from singerbench.errors import UserError

SINGERS = ["ana", "bo", "cy"]


def _audio(root: Path, name: str, i: int) -> str:
    p = root / "audio" / f"{name}.mp3"
    p.parent.mkdir(parents=True, exist_ok=True)
    if not p.exists():
        sf.write(p, singer_tone(i, 13.0, i), SR, format="MP3")
    return f"audio/{name}.mp3"


def _closed_rows(root: Path) -> list[dict]:
    rows = []
    for i, s in enumerate(SINGERS):
        for role, n in (("train", 2), ("val", 1), ("test", 1)):
            for k in range(n):
                tid = f"{s}-{role}{k}"
                rows.append({"track_id": tid, "audio": _audio(root, tid, i), "singers": s, "role": role,
                             "vocal_offsets": "0;6", "genre": "pop", "language": "en"})
    return rows


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_closed_csv(tmp_path):
    m = load_dataset("closed", manifest=_write_csv(tmp_path / "closed.csv", _closed_rows(tmp_path)))
    assert m.singers == SINGERS
    assert [len(m.by_role(r)) for r in ("train", "val", "test")] == [6, 3, 3]
    t = m.by_role("test")[0]
    assert t.vocal_offsets == (0.0, 6.0) and t.genre == "pop" and t.audio.is_file()


def test_closed_reference_layout_and_hop_offsets(tmp_path):
    doc = {}
    for i, s in enumerate(SINGERS):
        tracks = [{"path": _audio(tmp_path, f"{s}{k}", i), "vocal": [0, 6]} for k in range(3)]
        test = {"path": _audio(tmp_path, f"{s}t", i), "vocal": None, "macro_genre": "rock", "lang": "fr"}
        doc[s] = {"name": s.title(), "tracks": tracks, "test_track": test}
    (tmp_path / "closed.json").write_text(json.dumps(doc))
    m = load_dataset("closed", manifest=tmp_path / "closed.json", offsets="hop")
    assert [len(m.by_role(r)) for r in ("train", "val", "test")] == [6, 3, 3]
    assert m.by_role("val")[0].id == "audio/ana0"  # tracks[0] is the validation track
    test = m.by_role("test")[0]
    assert test.vocal_offsets == (0.0, 6.0) and test.language == "fr" and test.extra["name"] == "Ana"


def test_cloned(tmp_path):
    ref = _write_csv(tmp_path / "closed.csv", _closed_rows(tmp_path))
    rows = [{"track_id": "duet", "audio": _audio(tmp_path, "duet", 7), "singers": "ana;cy", "vocal_offsets": "0",
             "context_singer": "bo"},
            {"track_id": "solo", "audio": _audio(tmp_path, "solo", 8), "singers": ["bo"], "vocal_offsets": [6]}]
    (tmp_path / "cloned.json").write_text(json.dumps({"tracks": rows}))
    m = load_dataset("cloned", manifest=tmp_path / "cloned.json", reference=ref)
    cloned = m.by_role("cloned")
    assert [t.singers for t in cloned] == [("ana", "cy"), ("bo",)]
    assert [t.extra.get("context_singer") for t in cloned] == ["bo", None]
    assert m.singers == SINGERS and len(m.by_role("train")) == 6
    assert m.extra["cloned_targets"] == ["ana", "bo", "cy"]

    rows[1]["singers"] = "zed"
    (tmp_path / "cloned.json").write_text(json.dumps(rows))
    with pytest.raises(UserError, match="names singer zed, whom the reference set"):
        load_dataset("cloned", manifest=tmp_path / "cloned.json", reference=ref)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r[0].update(role="holdout"), "role 'holdout'"),
        (lambda r: r[0].update(audio="audio/nowhere.mp3"), "1 of 12 audio files .* missing, first: .*nowhere"),
        (lambda r: r[0].update(vocal_offsets="x"), "not a number"),
        (lambda r: r[0].update(singers=""), "names no singer"),
        (lambda r: [x.update(role="train") for x in r if x["singers"] == "bo" and x["role"] == "test"],
         "lack a train, val or test track, e.g. bo"),
    ],
)
def test_closed_bad_rows(tmp_path, change, message):
    rows = _closed_rows(tmp_path)
    change(rows)
    with pytest.raises(UserError, match=message):
        load_dataset("closed", manifest=_write_csv(tmp_path / "closed.csv", rows), offsets="error")


def test_closed_bad_files(tmp_path):
    with pytest.raises(UserError, match="needs --manifest"):
        load_dataset("closed")
    (tmp_path / "m.json").write_text('{"a": 1}')
    with pytest.raises(UserError, match="expected CSV rows"):
        load_dataset("closed", manifest=tmp_path / "m.json")
    rows = [{"track_id": "x", "audio": _audio(tmp_path, "x", 0), "singers": "a", "role": "test", "vocal_offsets": []}]
    (tmp_path / "e.json").write_text(json.dumps(rows))
    with pytest.raises(UserError, match="empty vocal segment list"):
        load_dataset("closed", manifest=tmp_path / "e.json")
