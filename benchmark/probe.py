"""The context probe: on cloned tracks, does a model name the voice or the singer whose backing it hears?

A cloned track of the generated singers puts a target singer's (vocoded) voice on a backing in another
singer's home style; the manifest records that singer as ``extra["context_singer"]``. From a result file's
per-track predictions (nothing is re-run) the probe counts, per run at the largest class count, the share of
cloned tracks predicted as one of their targets (the model followed the voice), as the context singer (it
followed the backing), or as anyone else. Tracks whose context singer was not among a run's classes are left
out of that run. Any dataset whose cloned tracks carry ``context_singer`` can be probed.

Each result says which dataset it was computed on (its ``request``: dataset spec and options);
:func:`probe_files` loads that dataset as recorded, never renders or separates anything, and skips (with a
one-line note) any result it cannot probe: no request, no cloned tracks, a corpus not on this machine, a split
that differs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from singerbench.errors import UserError
from singerbench.leaderboard import dataset_label, md_table, model_label, percent, result_files
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
            "(checksums differ: other data, options, stems or offsets); give the dataset options the run used"
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


@dataclass
class ProbeReport:
    """What :func:`probe_files` could probe, and one note per result it skipped."""

    rows: list[ProbeRow] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the name of each row's result, as it was given
    skipped: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        text = to_markdown(self.rows) if self.rows else "# What the models listen to on cloned tracks\n\nnothing probed\n"
        if self.skipped:
            text += "\nSkipped:\n\n" + "\n".join(f"- {note}" for note in self.skipped) + "\n"
        return text


def recorded_dataset(result: RunResult) -> tuple[str, dict] | None:
    """The dataset spec and options a result was computed with (its ``request``), or None when it lacks them."""
    if not result.request.get("dataset"):
        return None
    return str(result.request["dataset"]), result.dataset_options


def probe_files(
    results: Sequence[tuple[str, RunResult]],
    cache_dir: Path | None = None,
    dataset: tuple[str, dict] | None = None,
) -> ProbeReport:
    """Probe each ``(name, result)`` on the dataset it records (or on ``dataset``, the user's override).

    Datasets are loaded once per (spec, options), read-only: a generated corpus that is not rendered here is a
    skip, not a render. A result that cannot be probed is skipped with a note naming it and why.
    """
    from singerbench.datasets import load_dataset

    report = ProbeReport()
    loaded: dict[str, tuple[str, dict[str, str]] | str] = {}
    for name, result in results:
        if result.dataset.tracks.get("cloned", 0) == 0:
            report.skipped.append(f"{name}: no cloned tracks in dataset {result.dataset.name!r}")
            continue
        spec = dataset or recorded_dataset(result)
        if spec is None:
            report.skipped.append(f"{name}: records no request (dataset and options), so it cannot be reloaded; "
                                  "give the dataset options it was run with")
            continue
        key = json.dumps([spec[0], spec[1]], sort_keys=True, default=str)
        if key not in loaded:
            try:
                manifest = load_dataset(spec[0], {"cache_dir": cache_dir, "progress": False, "render": False},
                                        **spec[1])
                loaded[key] = (manifest.checksum(), context_singers(manifest))
            except UserError as e:
                loaded[key] = str(e)
        got = loaded[key]
        if isinstance(got, str):
            report.skipped.append(f"{name}: {got}")
            continue
        try:
            report.rows.append(_probe(result, got[0], got[1], name))
            report.names.append(name)
        except UserError as e:
            report.skipped.append(str(e))
    return report


def probe_paths(paths: Sequence[Path | str], cache_dir: Path | None = None,
                dataset: tuple[str, dict] | None = None) -> ProbeReport:
    """:func:`probe_files` on result files and folders (every ``*.json`` below); unreadable files are skipped too."""
    named, unreadable = [], []
    for f in result_files(paths):
        try:
            named.append((str(f), RunResult.from_json(f)))
        except UserError as e:
            unreadable.append(f"{f}: not a readable result ({str(e).splitlines()[0]})")
    report = probe_files(named, cache_dir=cache_dir, dataset=dataset)
    report.skipped = unreadable + report.skipped
    return report
