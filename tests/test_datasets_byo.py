"""Bring-your-own sets with the user's stems, strict columns, --offsets, labels and provenance.

The BYO sets here are made of the tiny generated corpus's real sung files (mixtures and their true stems),
written out as a user would: CSV manifests naming audio, vocals and instrumental paths.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_datasets_closed import _closed_rows, _write_csv

from singerbench.cli import main
from singerbench.datasets import load_dataset
from singerbench.errors import UserError
from singerbench.manifest import Manifest
from singerbench.results import RunResult


def _byo_from_corpus(corpus: Manifest, root: Path, n_singers: int = 4) -> tuple[Path, Path]:
    """A closed CSV (train/val/test of ``n_singers`` singers) and a cloned CSV, with stems, no offsets column."""
    singers = corpus.singers[:n_singers]
    closed, cloned = [], []
    for t in corpus.tracks:
        row = {"track_id": t.id, "audio": str(t.audio), "vocals": str(t.vocals), "instrumental": str(t.instrumental),
               "singers": ";".join(t.singers), "role": t.role, "vocal_offsets": ";".join(f"{o:g}" for o in t.vocal_offsets)}
        if t.role == "cloned":
            if all(s in singers for s in t.singers) and len(cloned) < 6:
                cloned.append({k: v for k, v in row.items() if k != "role"})
        elif t.singers[0] in singers:
            closed.append(row)
    return _write_csv(root / "closed.csv", closed), _write_csv(root / "cloned.csv", cloned)


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_byo_with_stems_runs_speaker_offline_without_separator_weights(tiny_synth, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    closed, cloned = _byo_from_corpus(tiny_synth, tmp_path)
    out = tmp_path / "speaker.json"
    code, _, err = _run(["run", "--model", "speaker", "--dataset", "cloned", "--manifest", str(cloned),
                         "--reference", str(closed), "--preset", "quick", "--runs", "2",
                         "--cache-dir", str(tmp_path / "cache"), "--no-progress", "-o", str(out)], capsys)
    assert code == 0, err
    assert not (tmp_path / "cache" / "separation").exists()  # no separator ran
    doc = json.loads(out.read_text())
    assert doc["dataset"]["generated"] is False
    assert doc["dataset"]["provenance"] == {
        role: {"stems": "given", "offsets": "given"} for role in ("train", "val", "test", "cloned")
    }
    result = RunResult.from_json(out)
    assert result.score(4, "test")["top1"]["mean"] >= 0.5  # the speaker encoder hears the real voices


def test_instrumental_kind_reads_the_given_instrumental_stem(tiny_synth, tmp_path):
    from singerbench.segments import SegmentSource

    closed, _ = _byo_from_corpus(tiny_synth, tmp_path)
    m = load_dataset("closed", manifest=closed)
    t = m.tracks[0]
    source = SegmentSource(16000, 1, "instrumental")
    assert source.stem_path(t) == t.instrumental and source.provenance(t) == "given"
    assert not source.needs_separation(t)
    bare = SegmentSource(16000, 1, "instrumental")
    from dataclasses import replace

    with pytest.raises(UserError, match="the manifest's 'instrumental' column"):
        bare.stem_path(replace(t, instrumental=None))


def test_stems_and_offsets_change_the_split_checksum(tiny_synth, tmp_path):
    closed, _ = _byo_from_corpus(tiny_synth, tmp_path)
    with_stems = load_dataset("closed", manifest=closed)
    rows = list(csv.DictReader(open(closed)))
    bare = _write_csv(tmp_path / "bare.csv", [{k: v for k, v in r.items() if k not in ("vocals", "instrumental")}
                                              for r in rows])
    without = load_dataset("closed", manifest=bare)
    assert [t.vocal_offsets for t in with_stems.tracks] == [t.vocal_offsets for t in without.tracks]
    assert with_stems.checksum() != without.checksum()
    assert with_stems.provenance()["train"]["stems"] == "given" and without.provenance()["train"]["stems"] == "none"
    hop = _write_csv(tmp_path / "hop.csv", [{k: v for k, v in r.items() if k != "vocal_offsets"} for r in rows])
    by_hop = load_dataset("closed", manifest=hop, offsets="hop")
    assert {t.offsets_from for t in by_hop.tracks} == {"hop"}
    assert by_hop.checksum() != with_stems.checksum()


@pytest.mark.parametrize(
    "column, near",
    [("vocal_offset", "vocal_offsets"), ("context_singr", "context_singer"), ("instrumentals", "instrumental")],
)
def test_unknown_column_names_the_nearest_known_one(tmp_path, column, near):
    rows = _closed_rows(tmp_path)
    for r in rows:
        r[column] = "x"
    for path in (_write_csv(tmp_path / "m.csv", rows), tmp_path / "m.json"):
        path.write_text(json.dumps({"tracks": rows})) if path.suffix == ".json" else None
        with pytest.raises(UserError, match=rf"unknown column '{column}' \(did you mean '{near}'\?\).*--lenient"):
            load_dataset("closed", manifest=path)
    m = load_dataset("closed", manifest=tmp_path / "m.csv", lenient=True)
    assert len(m.tracks) == 12


def test_every_row_problem_in_one_message(tmp_path):
    rows = _closed_rows(tmp_path)
    for i in range(8):
        rows[i]["role"] = "holdout"
    rows[9]["vocal_offsets"] = "x"
    with pytest.raises(UserError) as e:
        load_dataset("closed", manifest=_write_csv(tmp_path / "m.csv", rows))
    msg = str(e.value)
    assert "9 rows have problems" in msg and "row #1 " in msg and "row #5 " in msg and "and 4 more" in msg
    assert "\n" not in msg and "row #6 " not in msg


def test_offsets_error_lists_rows_and_the_way_out(tmp_path, capsys):
    rows = _closed_rows(tmp_path)
    for r in rows[:3]:
        r["vocal_offsets"] = ""
    path = _write_csv(tmp_path / "m.csv", rows)
    code, _, err = _run(["run", "--model", "mfcc", "--dataset", "closed", "--manifest", str(path), "--offsets", "error",
                         "--cache-dir", str(tmp_path / "cache"), "--no-progress"], capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ")
    assert "3 rows lack vocal offsets" in err and "--offsets hop" in err and "Traceback" not in err
    m = load_dataset("closed", manifest=path, offsets="hop")
    assert m.tracks[0].vocal_offsets == (0.0, 6.0) and m.tracks[0].offsets_from == "hop"
    assert m.tracks[5].offsets_from == "given" and m.provenance()["train"]["offsets"] == "given+hop"


def test_byo_is_never_labelled_generated(tiny_synth, tmp_path):
    # a singerbench manifest.json of generated data, brought as the user's own closed set
    path = tmp_path / "manifest.json"
    Manifest("mine", [t for t in tiny_synth.tracks if t.role != "cloned"], tiny_synth.singers, generated=True,
             ).to_json(path)
    assert load_dataset("closed", manifest=path).generated is False
    closed, cloned = _byo_from_corpus(tiny_synth, tmp_path)
    assert load_dataset("cloned", manifest=cloned, reference=closed).generated is False
    assert tiny_synth.generated is True
