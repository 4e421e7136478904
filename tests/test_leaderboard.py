"""The leaderboard: exact cells for hand-made results, dedup, sorting, sweep table, files on disk."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from singerbench.errors import UserError
from singerbench.leaderboard import load_results, render, write
from singerbench.presets import PAPER, PAPER_MEANSOFTMAX, QUICK
from singerbench.protocol import summarize
from singerbench.results import DatasetInfo, ModelInfo, RunResult


def make_result(
    model: str,
    weights: str,
    scores: dict[int, dict[str, tuple[list[float], list[float]]]],
    *,
    dataset: str = "mtg",
    generated: bool = False,
    created: str = "2025-01-01T00:00:00Z",
    preset: dict | None = None,
) -> RunResult:
    """A result whose aggregate scores are given by hand: {classes: {set: (top1 values, top5 values)}}."""
    rows = [
        {"class_count": c, "eval_set": s, "tracks": 10, "top1": summarize(t1), "top5": summarize(t5)}
        for c, per_set in scores.items()
        for s, (t1, t5) in per_set.items()
    ]
    runs = len(next(iter(next(iter(scores.values())).values()))[0])
    r = RunResult(
        model=ModelInfo(model, model, weights, "mixture", 16000, 1, 256, "builtin"),
        dataset=DatasetInfo(dataset, "0" * 64, generated, 20, {"train": 40, "val": 20, "test": 20}),
        preset=preset or {"name": PAPER.name, "version": PAPER.version, "params": PAPER.params()},
        seed=0,
        runs=runs,
        class_counts=sorted(scores),
        device="cpu",
        max_epochs_bound=False,
        scores=rows,
        run_details=[],
        timings={"embedding_s": 1.0, "protocol_s": 2.0, "total_s": 3.0},
        store={"computed": 0, "reused": 0},
        created=created,
    )
    RunResult.from_dict(r.to_dict())  # hand-made, but schema-valid
    return r


@pytest.fixture
def two() -> list[RunResult]:
    a = make_result("vocal", "0123456789abcdef", {20: {"test": ([0.9, 0.8], [1.0, 1.0]), "cloned": ([0.5, 0.6], [0.9, 0.7])}})
    b = make_result("mfcc", "none", {20: {"test": ([0.95, 0.95], [1.0, 1.0]), "cloned": ([0.25, 0.25], [0.5, 0.5])}})
    return [a, b]


def test_markdown_cells(two):
    md = render(two).to_markdown().splitlines()
    header = (
        "| Model | Dataset | Preset | Classes | Runs | test top-1 | test top-5 | cloned top-1 | cloned top-5 "
        "| drop real→cloned |"
    )
    i = md.index(header)
    assert md[i + 2] == "| mfcc | mtg | paper v2 | 20 | 2 | 95.0 ± 0.0 | 100.0 ± 0.0 | 25.0 ± 0.0 | 50.0 ± 0.0 | 70.0 |"
    assert md[i + 3] == "| vocal (01234567) | mtg | paper v2 | 20 | 2 | 85.0 ± 7.1 | 100.0 ± 0.0 | 55.0 ± 7.1 | 80.0 ± 14.1 | 30.0 |"
    assert "Class-count sweep" not in "\n".join(md) and "(generated)" not in "\n".join(md)


def test_csv_cells(two):
    rows = list(csv.reader(io.StringIO(render(two).to_csv())))
    assert rows[0] == [
        "model", "weights_id", "dataset", "generated", "split_checksum", "preset", "preset_version", "comparable",
        "deviations", "classes", "runs",
        "test_top1_mean", "test_top1_std", "test_top5_mean", "test_top5_std",
        "cloned_top1_mean", "cloned_top1_std", "cloned_top5_mean", "cloned_top5_std", "drop_real_cloned_top1",
    ]
    assert rows[1] == ["mfcc", "none", "mtg", "false", "0" * 64, "paper", "2", "true", "", "20", "2",
                       "95.00", "0.00", "100.00", "0.00", "25.00", "0.00", "50.00", "0.00", "70.00"]
    assert rows[2][:2] == ["vocal", "0123456789abcdef"]
    assert rows[2][11:] == ["85.00", "7.07", "100.00", "0.00", "55.00", "7.07", "80.00", "14.14", "30.00"]


def test_newest_result_of_a_key_wins_and_sorting_by_dataset_then_test_top1(two):
    newer = make_result("vocal", "0123456789abcdef", {20: {"test": ([0.99], [1.0])}}, created="2025-06-01T00:00:00Z")
    other = make_result("zeta", "none", {20: {"test": ([0.1], [0.2])}}, dataset="fma")
    board = render([*two, newer, other])
    assert [r[:2] for r in board.rows] == [["zeta", "fma"], ["vocal (01234567)", "mtg"], ["mfcc", "mtg"]]
    assert board.rows[1][5] == "99.0 ± 0.0" and board.rows[1][4] == "1"
    assert board.rows[1][7] == "" and board.rows[1][-1] == ""  # the newer result has no cloned set


def test_sweep_table_and_generated_mark():
    r = make_result(
        "vocal",
        "none",
        {10: {"test": ([0.9], [1.0])}, 20: {"test": ([0.8], [0.9])}},
        dataset="synth",
        generated=True,
    )
    board = render([r])
    assert board.header == ["Model", "Dataset", "Preset", "Classes", "Runs", "test top-1", "test top-5"]
    assert board.rows == [["vocal", "synth (generated)", "paper v2", "20", "1", "80.0 ± 0.0", "90.0 ± 0.0"]]
    assert [row[3] for row in board.sweep_rows] == ["10", "20"]
    md = board.to_markdown()
    assert "## Class-count sweep" in md and "| vocal | synth (generated) | paper v2 | 10 | 1 | 90.0 ± 0.0 |" in md
    assert "(generated): a synthetic dataset" in md
    assert [row[9] for row in board.csv_rows] == ["20", "10"]


def test_dataset_label_names_the_corpus_variant_its_request_recorded():
    plain = make_result("mfcc", "none", {100: {"test": ([0.8], [0.9])}}, dataset="synth", generated=True)
    large = make_result("mfcc", "none", {100: {"test": ([0.7], [0.9])}}, dataset="synth", generated=True)
    large.request = {"dataset_options": {"preset": "large"}}
    dial = make_result("mfcc", "none", {100: {"test": ([0.6], [0.9])}}, dataset="synth", generated=True)
    dial.request = {"dataset_options": {"preset": "large", "confound": "0"}}
    for k, r in enumerate((large, dial), start=1):  # three corpora: three split checksums
        r.dataset = replace(r.dataset, checksum=str(k) * 64)
    assert sorted(row[1] for row in render([plain, large, dial]).rows) == [
        "synth (generated)", "synth-large (generated)", "synth-large, confound 0 (generated)"]


def test_html_is_self_contained_and_escaped():
    r = make_result("<b>x</b>", "none", {20: {"test": ([0.5], [0.5])}})
    page = render([r]).to_html()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "<table>" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "50.0 ± 0.0" in page


def test_write_and_load_results(tmp_path, two):
    for i, r in enumerate(two):
        r.to_json(tmp_path / "results" / "mtg" / f"{i}.json")
    loaded = load_results([tmp_path / "results"])
    assert sorted(r.model.name for r in loaded) == ["mfcc", "vocal"]
    paths = write(render(loaded), tmp_path / "out")
    files = ["index.html", "leaderboard.csv", "leaderboard.md", "real_vs_cloned.svg"]
    assert sorted(p.name for p in paths) == files
    assert (tmp_path / "out" / "leaderboard.md").read_text() == render(two).to_markdown()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == files
    assert "![real vs cloned top-1 per model](real_vs_cloned.svg)" in render(two).to_markdown()
    assert '<img src="real_vs_cloned.svg"' in render(two).to_html()
    with pytest.raises(UserError, match="does not exist"):
        load_results([tmp_path / "nowhere"])


def test_empty_leaderboard():
    board = render([])
    assert "No results yet." in board.to_markdown() and board.to_csv().startswith("model,")


def test_figure_bars_follow_the_scores(two):
    """One bar per (model, eval set), as long as its mean top-1; one chance tick per model at 1 / classes."""
    from xml.etree import ElementTree

    from singerbench.figures import LABEL_W, PLOT_W

    svg = ElementTree.fromstring(render(two).figure_svg)
    ns = "{http://www.w3.org/2000/svg}"
    titled = [(r, r.find(f"{ns}title")) for r in svg.iter(f"{ns}rect")]
    bars = {t.text: float(r.get("width")) for r, t in titled if t is not None}
    assert bars == {
        "real test tracks: 95.0 ± 0.0 %": pytest.approx(0.95 * PLOT_W),
        "cloned tracks: 25.0 ± 0.0 %": pytest.approx(0.25 * PLOT_W),
        "real test tracks: 85.0 ± 7.1 %": pytest.approx(0.85 * PLOT_W),
        "cloned tracks: 55.0 ± 7.1 %": pytest.approx(0.55 * PLOT_W),
    }
    lines = [(line, line.find(f"{ns}title")) for line in svg.iter(f"{ns}line")]
    ticks = [float(line.get("x1")) for line, t in lines if t is not None and t.text == "chance"]
    assert ticks == [pytest.approx(LABEL_W + PLOT_W / 20)] * 2
    assert "mtg: top-1" in render(two).figure_svg
    assert render([]).figure_svg is None


def _preset(p, **record) -> dict:
    return {"name": p.name, "version": p.version, "params": p.params(), **record}


def test_presets_that_deviate_are_marked_and_non_comparable_ones_shown_apart():
    scores = {20: {"test": ([0.9], [1.0])}}
    results = [
        make_result("vocal", "none", scores),
        make_result("vocal", "none", scores, preset=_preset(PAPER_MEANSOFTMAX, leaderboard=True,
                                                            deviations=list(PAPER_MEANSOFTMAX.deviations))),
        make_result("clmr", "none", {20: {"test": ([1.0], [1.0])}},
                    preset=_preset(QUICK, leaderboard=False, deviations=list(QUICK.deviations))),
        make_result("mfcc", "none", scores, preset={"name": "paper", "version": "1", "params": {}}),  # a v1 file
    ]
    board = render(results)
    md = board.to_markdown()
    main, other = md.split("## Not comparable to the paper")
    assert "| vocal | mtg | paper v2 | 20 |" in main and "| vocal | mtg | paper-meansoftmax v1 † | 20 |" in main
    assert "| mfcc | mtg | paper v1 † |" in main  # recorded before v2: known to rank ties by mean softmax
    assert "clmr" not in main and "| clmr | mtg | quick v2 † | 20 |" in other  # best test top-1, yet not ranked
    assert "- paper v1: vote ties" in other and "- quick v2: an epoch is 8 batches" in other
    assert "paper v2:" not in md  # no deviation, no note
    rows = list(csv.DictReader(io.StringIO(board.to_csv())))
    quick = next(r for r in rows if r["model"] == "clmr")
    assert quick["comparable"] == "false" and "ReduceLROnPlateau patience 3" in quick["deviations"]
    assert "Not comparable to the paper" in board.to_html()
