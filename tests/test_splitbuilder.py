"""The split builder on the real MTG-Jamendo and FMA metadata (metadata-only mode and a precomputed vocal table)."""

from __future__ import annotations

import json

import pytest
from test_datasets_published import METADATA

from singerbench.datasets.published import parse_entries, read_split_docs
from singerbench.errors import UserError
from singerbench.splitbuilder import build_splits, read_fma_metadata, write_vocal_table


def test_mtg_metadata_only_counts_and_determinism(tmp_path):
    docs, report = build_splits("mtg", METADATA["mtg"], tmp_path / "a.zip", seed=3)
    stages = {s: (a, t) for s, a, t in report.stages}
    assert stages["metadata"] == (3565, 55525)  # the whole autotagging set
    assert stages["singers with >= 5 tracks"][0] == 2181  # as ../shared/data/README.md states
    assert stages["val split"] == stages["test split"] == (2181, 2181)
    build_splits("mtg", METADATA["mtg"], tmp_path / "b.zip", seed=3)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    read, source = read_split_docs("mtg", tmp_path / "a.zip")
    artists, entries = parse_entries("mtg", read, source)  # the adapters accept what the builder writes
    assert len(artists) == 2181 and len(entries) == stages["singers with >= 5 tracks"][1]


def test_fma_vocal_table_filter(tmp_path):
    cands = read_fma_metadata(METADATA["fma"])
    table = {}
    for i, c in enumerate(cands):  # a known table: every third track mostly instrumental
        table[c.file_id] = [0, 0, 0, 1] * 5 if i % 3 == 0 else [1, 1, 1, 0] * 5
    write_vocal_table(tmp_path / "vt.json", table, 0.5)
    docs, report = build_splits("fma", METADATA["fma"], tmp_path / "out", vocal_table=tmp_path / "vt.json")
    stages = {s: (a, t) for s, a, t in report.stages}
    voiced = [c for i, c in enumerate(cands) if i % 3 and not c.instrumental]
    assert stages["vocal in >= 50% of 3 s segments"][1] == len(voiced)
    first = next(iter(docs["train"].values()))["track"][0]
    assert first["vocal_segs"] == [0.0, 12.0, 24.0, 36.0, 48.0]  # pairs of vocal 3 s segments
    on_disk = json.loads((tmp_path / "out" / "fma_test_set.json").read_text())
    assert on_disk == docs["test"]


def test_bad_inputs(tmp_path):
    with pytest.raises(UserError, match="unknown dataset"):
        build_splits("nope", METADATA["mtg"], None)
    bad = tmp_path / "bad.tsv"
    bad.write_text("A\tB\n1\t2\n")
    with pytest.raises(UserError, match="not MTG-Jamendo metadata"):
        build_splits("mtg", bad, None)
    with pytest.raises(UserError, match="min-tracks"):
        build_splits("mtg", METADATA["mtg"], None, min_tracks=2)
