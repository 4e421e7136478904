"""The corpus distinctness measure on the tiny generated corpus: the ``speaker`` plugin enrols each singer by its
training songs and names every held-out real song among all singers, through the shared embedding store."""

from __future__ import annotations

import dataclasses

import pytest

from singerbench.errors import UserError
from singerbench.synthgen.distinct import corpus_embeddings, corpus_identification, main


@pytest.fixture(scope="module")
def tiny_embedded(tiny_synth, tmp_path_factory, test_cache):
    """tiny's real songs embedded by ``speaker`` into a fresh store (the rendered corpus is shared)."""
    pytest.importorskip("resemblyzer")
    root = tmp_path_factory.mktemp("cache")
    (root / "synth").symlink_to(test_cache / "synth")
    first = corpus_embeddings("tiny", cache_dir=root, device="cpu", progress=False)
    again = corpus_embeddings("tiny", cache_dir=root, device="cpu", progress=False)
    return first, again


def test_tiny_singers_are_named_by_their_held_out_songs(tiny_embedded) -> None:
    (manifest, table, counters), (_, table2, counters2) = tiny_embedded
    # train, val and test songs only (no clones), computed once: the second pass embeds nothing
    assert counters["segments"] == sum(len(t.vocal_offsets) for r in ("train", "val", "test")
                                       for t in manifest.by_role(r))
    assert counters["computed"] == counters["segments"] and counters2["computed"] == 0
    assert (table2.vectors == table.vectors).all()
    figures = corpus_identification(manifest, table)
    assert figures["voices"] == 10 and figures["held_out_songs"] == 20 and figures["chance"] == 0.1
    # ten Festival voices, three training songs each: GE2E names (nearly) every held-out song
    assert figures["identified"] >= 0.9 and figures["voices_all_right"] >= 0.8
    assert len(figures["confusions"]) == round((1 - figures["identified"]) * 20)


def test_a_confusion_is_reported_with_its_engine(tiny_embedded) -> None:
    """Relabel one held-out song as another singer's: the measure names its real singer and reports the
    miss as a confusion between two voices of the same engine (Festival)."""
    manifest, table, _ = tiny_embedded[0]
    song = manifest.by_role("test")[0]
    other = next(s for s in manifest.singers if s != song.singers[0])
    relabelled = dataclasses.replace(manifest, tracks=[dataclasses.replace(t, singers=(other,)) if t.id == song.id
                                                       else t for t in manifest.tracks])
    before = corpus_identification(manifest, table)
    after = corpus_identification(relabelled, table)
    assert not any(c["song"] == song.id for c in before["confusions"])  # named right when labelled right
    miss = next(c for c in after["confusions"] if c["song"] == song.id)
    assert miss == {"song": song.id, "singer": other, "named": song.singers[0], "same_engine": True}
    assert after["identified"] == pytest.approx(before["identified"] - 1 / 20)
    assert after["confusions_same_engine"] == before["confusions_same_engine"] + 1


def test_a_corpus_not_rendered_says_which_command_renders_it(tmp_path, capsys) -> None:
    pytest.importorskip("resemblyzer")
    with pytest.raises(UserError, match=r"`singerbench synth --preset small --seed 0 --confound 0\.0 --out "):
        corpus_embeddings("small", confound=0.0, cache_dir=tmp_path, progress=False)
    assert main(["--corpus", "small", "--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the generated corpus (small, seed 0) is not rendered")
