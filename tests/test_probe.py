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
