"""The context probe on hand-made predictions whose voice / backing / other shares are known."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_leaderboard import make_result

from singerbench.errors import UserError
from singerbench.manifest import Manifest, Track
from singerbench.probe import probe_result, to_markdown


def _manifest(with_context: bool = True) -> Manifest:
    tracks = [Track(f"{s}-{r}", Path(f"{s}-{r}.flac"), (s,), r, (0.0,)) for s in "abc" for r in ("train", "val", "test")]
    # clone i: voice of `targets`, backing in the home style of `context`
    clones = [("c0", ("a",), "b"), ("c1", ("b",), "c"), ("c2", ("c",), "a"), ("c3", ("a", "b"), "c")]
    for tid, targets, context in clones:
        extra = {"context_singer": context} if with_context else {}
        tracks.append(Track(tid, Path(f"{tid}.flac"), targets, "cloned", (0.0,), extra=extra))
    return Manifest("toy", tracks, ["a", "b", "c"], generated=True)


def _track(tid: str, targets: list[str], prediction: str) -> dict:
    return {"track_id": tid, "targets": targets, "prediction": prediction, "votes": {prediction: 1},
            "top5": [prediction], "top1_correct": prediction in targets, "top5_correct": prediction in targets}


def _result(manifest: Manifest, runs: list[list[str]]):
    """A result whose run ``i`` predicts ``runs[i][k]`` for clone ``k``."""
    targets = {"c0": ["a"], "c1": ["b"], "c2": ["c"], "c3": ["a", "b"]}
    r = make_result("mixture", "none", {3: {"test": ([1.0] * len(runs), [1.0] * len(runs)),
                                            "cloned": ([0.0] * len(runs), [0.0] * len(runs))}},
                    dataset="toy", generated=True)
    r.dataset.checksum = manifest.checksum()
    r.run_details = [
        {"class_count": 3, "run": i, "classes": ["a", "b", "c"],
         "evals": {"cloned": {"tracks": [_track(t, targets[t], p) for t, p in zip(targets, preds, strict=True)]}}}
        for i, preds in enumerate(runs)
    ]
    return r


def test_shares_of_voice_backing_and_other():
    m = _manifest()
    # run 0: follows the backing on all four clones; run 1: the voice on c0 and the duet c3, backing on c1,
    # and on c2 names b, neither its voice (c) nor its backing (a)
    row = probe_result(_result(m, [["b", "c", "a", "c"], ["a", "c", "b", "b"]]), m)
    assert row.tracks == 4 and row.class_count == 3
    assert row.shares["voice"]["values"] == [0.0, 0.5]
    assert row.shares["context"]["values"] == [1.0, 0.25]
    assert row.shares["other"]["values"] == [0.0, 0.25]
    table = to_markdown([row])
    assert "| mixture | toy (generated) | 3 | 2 | 4 | 25.0 ± 35.4 | 62.5 ± 53.0 | 12.5 ± 17.7 |" in table


def test_probe_refuses_what_it_cannot_read():
    m = _manifest()
    other = _result(m, [["b", "c", "a", "c"]])
    other.dataset.checksum = "f" * 64
    with pytest.raises(UserError, match="another split"):
        probe_result(other, m)
    bare = _manifest(with_context=False)
    with pytest.raises(UserError, match="records no context_singer"):
        probe_result(_result(bare, [["b", "c", "a", "c"]]), bare)


def _with_request(result, dataset: str | None, options: dict | None = None):
    """A result carrying the contract's ``request`` (issue 11 writes it; here it is set by hand)."""
    result.request = {} if dataset is None else {"dataset": dataset, "dataset_options": options or {}}
    return result


def test_probe_files_probes_what_it_can_and_names_what_it_skipped(tiny_synth, test_cache, tmp_path):
    from singerbench.probe import probe_files

    clones = [t for t in tiny_synth.by_role("cloned") if t.extra.get("context_singer")]
    good = make_result("mixture", "none", {10: {"test": ([1.0], [1.0]), "cloned": ([0.0], [0.0])}},
                       dataset="synth", generated=True)
    good.dataset.checksum = tiny_synth.checksum()
    good.dataset.tracks = {"train": 1, "val": 1, "test": 1, "cloned": len(clones)}
    # every clone predicted as its backing's singer
    good.run_details = [{"class_count": 10, "run": 0, "seed": 0, "classes": list(tiny_synth.singers), "evals": {"cloned": {
        "tracks": [_track(t.id, list(t.singers), t.extra["context_singer"]) for t in clones]}}}]
    no_clones = make_result("mfcc", "none", {10: {"test": ([1.0], [1.0])}}, dataset="mtg")
    no_request = make_result("mfcc", "none", {10: {"test": ([1.0], [1.0]), "cloned": ([0.0], [0.0])}})
    no_request.dataset.tracks["cloned"] = 3
    unrendered = make_result("mfcc", "none", {10: {"test": ([1.0], [1.0]), "cloned": ([0.0], [0.0])}}, dataset="synth")
    unrendered.dataset.tracks["cloned"] = 3
    cache = tmp_path / "cache"
    (cache / "synth").parent.mkdir()
    (cache / "synth").symlink_to(test_cache / "synth")
    report = probe_files(
        [("good.json", _with_request(good, "synth", {"preset": "tiny"})),
         ("mtg.json", _with_request(no_clones, "mtg", {"data_root": "/nowhere"})),
         ("old.json", _with_request(no_request, None)),
         ("big.json", _with_request(unrendered, "synth", {"preset": "full", "seed": "7"}))],
        cache_dir=cache,
    )
    assert len(report.rows) == 1 and report.rows[0].shares["context"]["values"] == [1.0]
    notes = "\n".join(report.skipped)
    assert len(report.skipped) == 3
    assert "mtg.json: no cloned tracks" in notes and "old.json: records no request" in notes
    assert "big.json: the generated corpus (full, seed 7) is not rendered" in notes
    assert not list((test_cache / "synth").glob("full-seed7*"))  # nothing rendered
    assert "Skipped:" in report.to_markdown() and "- old.json" in report.to_markdown()

    # the report draws the same probe from the results alone, each on the dataset its request records
    from singerbench.report import Entry
    from singerbench.report_page import build

    built = build([Entry(tmp_path / "good.json", good), Entry(tmp_path / "old.json", no_request)], tmp_path / "rep",
                  cache_dir=cache)
    assert [k for k in built.figures if k.endswith("-context-probe.svg")], list(built.figures)
    assert "| mixture | synth-tiny (generated) | 10 | 1 | " in built.markdown and "| 0.0 ± 0.0 | 100.0 ± 0.0 |" in built.markdown


def test_probe_cli_on_a_folder_names_every_skipped_result(tmp_path, capsys):
    from singerbench.cli import main

    folder = tmp_path / "results"
    (folder / "mtg").mkdir(parents=True)
    make_result("mfcc", "none", {10: {"test": ([1.0], [1.0])}}).to_json(folder / "mtg" / "mfcc.json")
    old = make_result("mfcc", "none", {10: {"test": ([1.0], [1.0]), "cloned": ([0.0], [0.0])}}, dataset="synth")
    old.dataset.tracks["cloned"] = 3
    old.to_json(folder / "old.json")
    (folder / "notes.json").write_text("[1, 2]")
    code = main(["probe", str(folder), "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr()
    assert code == 1 and out.err.startswith("error: no result could be probed (3 skipped")
    assert "mfcc.json: no cloned tracks" in out.out and "old.json: records no request" in out.out
    assert "notes.json: not a readable result" in out.out
    assert not (tmp_path / "cache").exists()  # nothing rendered, nothing cached
