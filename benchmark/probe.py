"""The context probe: on cloned tracks, does a model name the voice or the singer whose backing it hears?

A cloned track of the generated singers puts a target singer's (vocoded) voice on a backing in another
singer's home style; the manifest records that singer as ``extra["context_singer"]``. From a result file's
per-track predictions (nothing is re-run) the probe counts, per run at the largest class count, the share of
cloned tracks predicted as one of their targets (the model followed the voice), as the context singer (it
followed the backing), or as anyone else. Tracks whose context singer was not among a run's classes are left
out of that run. Any dataset whose cloned tracks carry ``context_singer`` can be probed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from singerbench.errors import UserError
from singerbench.leaderboard import dataset_label, md_table, model_label, percent
from singerbench.manifest import Manifest
from singerbench.protocol import summarize
from singerbench.results import RunResult

CONTEXT_KEY = "context_singer"
OUTCOMES = ("voice", "context", "other")
HEADER = ["Model", "Dataset", "Classes", "Runs", "cloned tracks", "names the voice", "names the backing's singer",
          "names another singer"]


@dataclass
class ProbeRow:
    """One result's probe: ``shares[outcome]`` is a mean/std/values summary over runs."""

    model: str
    dataset: str
    class_count: int
    tracks: int
    shares: dict[str, dict]

    def cells(self) -> list[str]:
        runs = len(self.shares["voice"]["values"])
        shares = [percent(self.shares[o]) for o in OUTCOMES]
        return [self.model, self.dataset, str(self.class_count), str(runs), str(self.tracks), *shares]


def context_singers(manifest: Manifest) -> dict[str, str]:
    """Cloned track id → the singer whose home style its backing is in."""
    out = {t.id: t.extra[CONTEXT_KEY] for t in manifest.by_role("cloned") if t.extra.get(CONTEXT_KEY)}
    if not out:
        raise UserError(
            f"dataset {manifest.name!r} records no {CONTEXT_KEY} for its cloned tracks; the probe needs one "
            "(the generated singers have it: --dataset synth)"
        )
    return out


def probe_results(results: Sequence[RunResult], manifest: Manifest) -> list[ProbeRow]:
    """One row per result; every result must have been computed on ``manifest``."""
    checksum, contexts = manifest.checksum(), context_singers(manifest)
    return [_probe(r, checksum, contexts, f"result of {r.model.name} ({r.model.spec})") for r in results]


def probe_result(result: RunResult, manifest: Manifest) -> ProbeRow:
    """The voice / context / other shares of ``result``'s cloned predictions, which must be on ``manifest``."""
    return probe_results([result], manifest)[0]


def _probe(result: RunResult, checksum: str, contexts: dict[str, str], source: str) -> ProbeRow:
    if result.dataset.checksum != checksum:
        raise UserError(
            f"{source} was computed on another split of {result.dataset.name!r} than the dataset loaded here "
            "(checksums differ); give the dataset options the run used"
        )
    count = result.main_class_count
    shares: dict[str, list[float]] = {o: [] for o in OUTCOMES}
    tracks = 0
    for run in result.run_details:
        cloned = run["evals"].get("cloned") if run["class_count"] == count else None
        if cloned is None:
            continue
        classes = set(run["classes"])
        counted = [t for t in cloned["tracks"] if contexts.get(t["track_id"]) in classes]
        if not counted:
            continue
        voice = sum(t["prediction"] in t["targets"] for t in counted)
        context = sum(t["prediction"] not in t["targets"] and t["prediction"] == contexts[t["track_id"]]
                      for t in counted)
        for outcome, n in zip(OUTCOMES, (voice, context, len(counted) - voice - context), strict=True):
            shares[outcome].append(n / len(counted))
        tracks = max(tracks, len(counted))
    if not tracks:
        raise UserError(f"{source} holds no cloned-track predictions whose context singer was among the classes")
    return ProbeRow(model_label(result), dataset_label(result), count, tracks,
                    {o: summarize(v) for o, v in shares.items()})


def to_markdown(rows: Sequence[ProbeRow]) -> str:
    lines = ["# What the models listen to on cloned tracks", "",
             "Share of cloned tracks (%, mean ± std over runs, largest class count) whose prediction is one of the "
             "target singers (the voice), the singer whose home style the backing is in, or another singer.", ""]
    return "\n".join(lines + md_table(HEADER, [r.cells() for r in rows])) + "\n"
