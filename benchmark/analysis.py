"""The paper's analyses, read from result files (nothing is re-run): per-track outcomes, groupings, rankings.

Each function turns :class:`~singerbench.results.RunResult` content into numbers the report draws: top-1 per
class count (Fig. 1), per genre / language (Fig. 2), per number of training songs (Fig. 3), intervals for every
score and the paired ranking of models within one dataset variant. Results written before a field existed simply
lack it; the functions return nothing for it and the report says what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from singerbench.results import RunResult
from singerbench.stats import ALPHA, Outcomes, PairedTest, bootstrap_ci, outcomes, paired_test


@dataclass(frozen=True)
class Score:
    """A mean with its 95 % bootstrap interval (None when the result has no per-track details) and track count."""

    mean: float
    ci: tuple[float, float] | None
    tracks: int


def track_outcomes(
    result: RunResult, class_count: int, eval_set: str, metric: str = "top1",
    keep: Callable[[str], bool] | None = None,
) -> Outcomes | None:
    """``values[run, track]`` = 1 if the track was right at ``metric`` (top1/top5), from ``run_details``."""
    per_run = []
    for run in result.run_details:
        scored = run["evals"].get(eval_set) if run["class_count"] == class_count else None
        if scored is None:
            continue
        values = {t["track_id"]: float(t[f"{metric}_correct"]) for t in scored["tracks"]
                  if keep is None or keep(t["track_id"])}
        if values:
            per_run.append((int(run["seed"]), values))
    return outcomes(per_run) if per_run else None


def score(result: RunResult, class_count: int, eval_set: str, metric: str = "top1",
          keep: Callable[[str], bool] | None = None) -> Score | None:
    """The score with its interval: from per-track details when the result has them, else its aggregate."""
    o = track_outcomes(result, class_count, eval_set, metric, keep)
    if o is not None:
        return Score(o.mean(), bootstrap_ci(o), o.n_tracks)
    if keep is not None:
        return None
    agg = result.score(class_count, eval_set)
    return None if agg is None else Score(agg[metric]["mean"], None, agg["tracks"])


def sweep(result: RunResult, eval_set: str) -> list[tuple[int, Score]]:
    """Top-1 at every class count of the result (Fig. 1)."""
    out = []
    for c in sorted(result.class_counts):
        s = score(result, c, eval_set)
        if s is not None:
            out.append((c, s))
    return out


def grouped(result: RunResult, eval_set: str, field: str) -> dict[str, Score]:
    """Top-1 at the largest class count per value of ``track_info[track][field]`` (genre, language, train_songs);
    empty when the result records no such field."""
    info = result.track_info
    values = sorted({str(v[field]) for v in info.values() if v.get(field) is not None},
                    key=lambda s: (0, int(s)) if s.isdigit() else (1, s))
    out: dict[str, Score] = {}
    for v in values:
        s = score(result, result.main_class_count, eval_set,
                  keep=lambda t, v=v: t in info and str(info[t].get(field)) == v)
        if s is not None:
            out[v] = s
    return out


@dataclass(frozen=True)
class Rank:
    """A model's place within its dataset variant: ``rank`` counts the models significantly better, plus one."""

    rank: int
    tied: bool
    tested: bool  # False when some comparison lacked per-track details and fell back to the means


def pairwise(results: Sequence[RunResult], eval_set: str) -> dict[tuple[int, int], PairedTest | None]:
    """The paired top-1 test of every pair ``i < j`` (A = i, B = j) at their largest class counts; None where
    either lacks per-track details. A pair's p-value does not depend on its order (the flips are symmetric)."""
    o = [track_outcomes(r, r.main_class_count, eval_set) for r in results]
    return {(i, j): paired_test(o[i], o[j]) if o[i] is not None and o[j] is not None else None
            for i in range(len(results)) for j in range(i + 1, len(results))}


def rank(results: Sequence[RunResult], eval_set: str, alpha: float = ALPHA,
         tests: dict[tuple[int, int], PairedTest | None] | None = None) -> dict[int, Rank]:
    """Rank results (same variant) by top-1 at their largest class count; index -> Rank.

    A result is behind another only when the other's mean is higher *and* the paired test says the difference
    is significant (p < alpha); results not separated that way share a rank (a tie). ``tests``: the
    :func:`pairwise` tests of ``results``, when the caller has them already.
    """
    tests = pairwise(results, eval_set) if tests is None else tests
    data = []
    for i, r in enumerate(results):
        agg = r.score(r.main_class_count, eval_set)
        if agg is not None:
            data.append((i, agg["top1"]["mean"]))
    out: dict[int, Rank] = {}
    for i, mean_i in data:
        behind, tested = 0, True
        for j, mean_j in data:
            if j == i or mean_j <= mean_i:
                continue
            test = tests[(min(i, j), max(i, j))]
            if test is None:
                tested = False
                behind += 1
            elif test.p_value < alpha:
                behind += 1
        out[i] = Rank(behind + 1, False, tested)
    for i, r in out.items():
        tied = sum(1 for s in out.values() if s.rank == r.rank) > 1
        out[i] = Rank(r.rank, tied, r.tested)
    return out
