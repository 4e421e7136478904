"""`singerbench report`: every figure rebuilt from result files, the numbers drawn equal the JSON numbers,
variants never ranked together, missing fields said, not guessed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from singerbench.analysis import grouped, rank, track_outcomes
from singerbench.cli import main
from singerbench.presets import PAPER
from singerbench.protocol import summarize
from singerbench.report import load_entries
from singerbench.report_page import build
from singerbench.results import DatasetInfo, ModelInfo, RunResult

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "leaderboard" / "results"
GENRES = ("rock", "jazz")


def simulated_result(
    model: str, accuracy: float, *, seed: int = 0, checksum: str = "a" * 64, class_counts: tuple[int, ...] = (6,),
    runs: int = 3, probe: bool = True,
) -> RunResult:
    """A result with per-track details, track info, verification and a similarity probe, made from coin flips."""
    rng = np.random.default_rng(seed)
    singers = [f"s{i}" for i in range(6)]
    scores, details = [], []
    for c in class_counts:
        per_set: dict[str, list[tuple[float, float]]] = {"test": [], "cloned": []}
        for r in range(runs):
            evals = {}
            for s, n, acc in (("test", 12, accuracy), ("cloned", 8, accuracy / 2)):
                tracks = []
                for t in range(n):
                    who = singers[t % 6]
                    ok = bool(rng.random() < acc)
                    tracks.append({"track_id": f"{s}{t}", "targets": [who], "prediction": who if ok else "s9",
                                   "votes": {who: 1}, "top5": [who], "top1_correct": ok, "top5_correct": True})
                top1 = float(np.mean([t["top1_correct"] for t in tracks]))
                evals[s] = {"top1": top1, "top5": 1.0, "tracks": tracks}
                per_set[s].append((top1, 1.0))
            details.append({"class_count": c, "run": r, "seed": 1000 + r, "classes": singers, "epochs": 5,
                            "best_epoch": 1, "best_val_loss": 0.5, "final_lr": 0.01, "max_epochs_bound": False,
                            "evals": evals})
        for s, vals in per_set.items():
            scores.append({"class_count": c, "eval_set": s, "tracks": 12 if s == "test" else 8,
                           "top1": summarize([v[0] for v in vals]), "top5": summarize([v[1] for v in vals])})
    info = {f"{s}{t}": {"genre": GENRES[t % 2], "language": "en" if t < 4 else "it", "train_songs": 2 + t % 3}
            for s, n in (("test", 12), ("cloned", 8)) for t in range(n)}
    similarity = {}
    if probe:
        means = {"same_singer": 0.6, "vocal_stem": 0.3 + accuracy / 10, "instrumental_stem": 0.7, "other_singers": 0.0}
        similarity = {"stems": "dataset", "sets": {"test": {"tracks": 12, "means": means,
                                                            "per_track": {"test0": means}}}}
    result = RunResult(
        model=ModelInfo(model, model, "none", "mixture", 16000, 1, 8, "builtin"),
        dataset=DatasetInfo("synth", checksum, True, 6, {"train": 12, "val": 6, "test": 12, "cloned": 8}),
        preset={"name": PAPER.name, "version": PAPER.version, "params": PAPER.params()},
        seed=0, runs=runs, class_counts=list(class_counts), device="cpu", max_epochs_bound=False,
        scores=scores, run_details=details, timings={"embedding_s": 1.0, "protocol_s": 1.0, "total_s": 2.0},
        store={"computed": 0, "reused": 0}, created="2026-12-01T00:00:00Z",
        track_info=info,
        verification={"test": {"eer": 0.125, "eer_ci": [0.05, 0.2], "min_dcf": 0.5, "min_dcf_ci": [0.3, 0.7],
                               "p_target": 0.01, "c_miss": 1.0, "c_fa": 1.0, "target_trials": 24,
                               "nontarget_trials": 120, "tracks": 12}},
        similarity=similarity,
    )
    return RunResult.from_dict(result.to_dict())  # schema-valid, and survives a round trip


def drawn(svg: str) -> list[tuple[str, float]]:
    """(tooltip label, data-value) of every bar and point in an SVG."""
    out = []
    for m in re.finditer(r'<(?:rect|circle) class="(?:bar|point)"[^>]*data-value="([^"]+)"><title>([^<]*)</title>', svg):
        out.append((m.group(2), float(m.group(1))))
    return out


def test_report_rebuilds_every_figure_from_the_committed_results_and_draws_their_numbers(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(COMMITTED), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "index.html" in files and "report.md" in files
    figures = [f for f in files if f.startswith("figures/")]
    assert figures, files
    docs = [json.loads(p.read_text()) for p in sorted(COMMITTED.rglob("*.json"))]
    fig1 = next(f for f in figures if "fig1" in f)
    points = drawn((out / fig1).read_text())
    assert len(points) == sum(len(d["scores"]) for d in docs)  # a point per (class count, real or cloned) score
    for doc in docs:
        for s in doc["scores"]:
            label = "real" if s["eval_set"] == "test" else "cloned"
            mine = [v for tip, v in points
                    if tip.startswith(doc["model"]["name"]) and f"— {label} at {s['class_count']}:" in tip]
            assert mine == [pytest.approx(s["top1"]["mean"], abs=1e-12)], (doc["model"]["name"], label)
    # the page inlines the same figures, draws what the files record and says what they lack instead of guessing
    page = (out / "index.html").read_text()
    assert all((out / f).read_text().strip() in page for f in figures)
    per_track, probed = any(d.get("track_info") for d in docs), any(d.get("similarity") for d in docs)
    assert any("fig2a" in f for f in figures) == per_track
    assert ("no result here records it per track" in page) == (not per_track)
    assert any("fig4" in f for f in figures) == probed
    assert ("Fig. 4 (similarity probe): no result here carries it" in page) == (not probed)
    assert "not comparable to real data" in stdout and re.search(r"^\| 1=? \| 1=? \|", stdout, re.M)  # a rank 1


def test_report_figures_of_per_track_analyses_equal_a_direct_computation(tmp_path):
    a = simulated_result("alpha-model-with-a-very-long-name-that-must-not-be-cut", 0.9, seed=1,
                         class_counts=(3, 6))
    b = simulated_result("beta", 0.4, seed=2, class_counts=(3, 6))
    paths = []
    for r in (a, b):
        paths.append(r.to_json(tmp_path / "results" / f"{r.model.name}.json"))
    built = build(load_entries([tmp_path / "results"]), tmp_path)
    names = sorted(built.figures)
    assert [n.split("-", 3)[-1] for n in names] == sorted(
        ["6-fig1-classes.svg", "6-fig2a-genre.svg", "6-fig2b-language.svg", "6-fig3-train_songs.svg",
         "6-fig4-similarity.svg"])

    genre_fig = drawn(next(v for k, v in built.figures.items() if "genre" in k))
    for r in (a, b):
        doc = r.to_dict()
        for genre in GENRES:  # direct: mean over runs of the share of correct real test tracks of that genre
            per_run = [np.mean([t["top1_correct"] for t in run["evals"]["test"]["tracks"]
                                if doc["track_info"][t["track_id"]]["genre"] == genre])
                       for run in doc["run_details"] if run["class_count"] == 6]
            value = next(v for tip, v in genre_fig if tip.startswith(f"{genre} (real) / {r.model.name}"))
            assert value == pytest.approx(float(np.mean(per_run)))
        assert grouped(r, "test", "train_songs").keys() == {"2", "3", "4"}
    sweep_fig = drawn(next(v for k, v in built.figures.items() if "fig1" in k))
    for r in (a, b):
        for c in (3, 6):
            value = next(v for tip, v in sweep_fig if tip.startswith(f"{r.model.name} — real at {c}:"))
            assert value == pytest.approx(r.score(c, "test")["top1"]["mean"])
    sim_fig = drawn(next(v for k, v in built.figures.items() if "similarity" in k))
    assert sorted(v for _, v in sim_fig) == sorted(
        x for r in (a, b) for x in r.similarity["sets"]["test"]["means"].values())
    assert any(v == 0.0 for _, v in sim_fig)  # a zero is drawn (outlined stub), not left out

    # ranking: 0.9 vs 0.4 on 12 tracks x 3 runs is a real difference
    ranks = rank([a, b], "test")
    assert ranks[0].rank == 1 and ranks[1].rank == 2 and not ranks[0].tied
    page = built.html
    assert "alpha-model-with-a-very-long-name-that-must-not-be-cut" in page
    assert 'href="results/alpha-model' in page and "EER" in page and "12.5 [5.0, 20.0]" in page
    assert "Similarity probe" in page and "the same song&#x27;s instrumental stem" in page


def test_variants_are_never_ranked_together(tmp_path):
    tiny = simulated_result("m", 0.9, seed=1, checksum="b" * 64)
    small_a = simulated_result("m", 0.3, seed=2, checksum="c" * 64)
    small_b = simulated_result("n", 0.3, seed=3, checksum="c" * 64)
    for i, r in enumerate((tiny, small_a, small_b)):
        r.to_json(tmp_path / f"{i}.json")
    built = build(load_entries([tmp_path]), tmp_path)
    sections = built.markdown.split("\n## ")[1:]
    assert len(sections) == 2
    assert sum("split bbbbbbbb" in s for s in sections) == 1 and sum("split cccccccc" in s for s in sections) == 1
    tiny_rows = [line for line in next(s for s in sections if "bbbbbbbb" in s).splitlines() if line.startswith("| 1")]
    assert len(tiny_rows) == 1  # the tiny corpus's only model is ranked alone, not against the other corpus


def test_ties_when_the_paired_test_does_not_separate():
    a = simulated_result("a", 0.7, seed=5)
    r = rank([a, simulated_result("b", 0.7, seed=5)], "test")  # the same outcomes
    assert r[0].rank == r[1].rank == 1 and r[0].tied and r[1].tied
    assert track_outcomes(a, 6, "test").values.shape == (3, 12)


def test_report_refuses_missing_paths(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_leaderboard_command_writes_the_report_page_as_its_index(tmp_path, capsys):
    out = tmp_path / "board"
    assert main(["leaderboard", str(COMMITTED), "--out", str(out)]) == 0
    capsys.readouterr()
    page = (out / "index.html").read_text()
    assert "Rank real" in page and "data-report-ok" in page and "<svg" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched
    assert (out / "leaderboard.md").is_file() and (out / "leaderboard.csv").is_file()
