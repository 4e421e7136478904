"""Statistics that separate models: bootstrap confidence intervals and a paired test, from per-track outcomes.

Scores come from a matrix ``values[run, track]`` (1/0 for a correct/wrong track, or any per-track number) with a
``mask`` of the (run, track) cells that were scored: at a reduced class count a run scores only the test tracks
of its singers. The procedures, stated once in docs/results.md:

- **Confidence interval** (:func:`bootstrap_ci`): a two-way percentile bootstrap. Each of ``resamples``
  replicates draws the runs with replacement *and*, independently, the tracks with replacement; its score is the
  mean over the drawn (run, track) cells that were scored (weighted by how often each was drawn). The interval is
  the 2.5th and 97.5th percentiles of the replicates. Resampling runs covers the head's seed, resampling tracks
  covers which songs happen to be in the test set.
- **Paired test** (:func:`paired_test`): two models scored on the same tracks with the same run seeds. Per track,
  the difference of the two models' mean scores over the shared runs; under "no difference" the sign of each
  track's difference is arbitrary, so a sign-flip permutation test (``permutations`` random flips, two-sided,
  p = (1 + #{|permuted mean| >= |observed mean|}) / (1 + permutations)) gives the p-value.

Every random draw takes a seed: the same inputs give the same interval and p-value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: replicates of the bootstrap and flips of the permutation test (recorded in docs; enough for 2-digit p-values).
RESAMPLES = 2000
PERMUTATIONS = 5000
CONFIDENCE = 0.95
ALPHA = 0.05
_CHUNK = 250  # replicates per vectorised step (memory bound only)


@dataclass(frozen=True)
class Outcomes:
    """Per-track scores of one eval set over runs: ``values[r, t]`` counts where ``mask[r, t]``."""

    run_seeds: tuple[int, ...]
    track_ids: tuple[str, ...]
    values: np.ndarray  # (runs, tracks) float64
    mask: np.ndarray  # (runs, tracks) bool

    def mean(self) -> float:
        """The score: the mean of the per-run scores (each run: mean over its scored tracks)."""
        per_run = [self.values[r, self.mask[r]].mean() for r in range(len(self.run_seeds)) if self.mask[r].any()]
        return float(np.mean(per_run))

    @property
    def n_tracks(self) -> int:
        return int(self.mask.any(axis=0).sum())


def outcomes(per_run: list[tuple[int, dict[str, float]]]) -> Outcomes:
    """Build :class:`Outcomes` from ``[(run seed, {track id: value})]`` (tracks in first-seen order)."""
    ids: dict[str, int] = {}
    for _, scores in per_run:
        for t in scores:
            ids.setdefault(t, len(ids))
    values = np.zeros((len(per_run), len(ids)))
    mask = np.zeros((len(per_run), len(ids)), dtype=bool)
    for r, (_, scores) in enumerate(per_run):
        for t, v in scores.items():
            values[r, ids[t]] = float(v)
            mask[r, ids[t]] = True
    return Outcomes(tuple(int(s) for s, _ in per_run), tuple(ids), values, mask)


def bootstrap_ci(
    o: Outcomes, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float]:
    """The two-way (runs × tracks) percentile bootstrap interval of the score; see the module docstring."""
    n_runs, n_tracks = o.values.shape
    if n_runs == 0 or n_tracks == 0:
        raise ValueError("no scored tracks to bootstrap")
    rng = np.random.default_rng(seed)
    num = o.values * o.mask
    den = o.mask.astype(np.float64)
    reps = []
    for start in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - start)
        w_run = rng.multinomial(n_runs, np.full(n_runs, 1.0 / n_runs), size=b).astype(np.float64)
        w_track = rng.multinomial(n_tracks, np.full(n_tracks, 1.0 / n_tracks), size=b).astype(np.float64)
        top = np.einsum("br,rt,bt->b", w_run, num, w_track)
        bottom = np.einsum("br,rt,bt->b", w_run, den, w_track)
        ok = bottom > 0  # a replicate that drew no scored cell carries no information
        reps.append(top[ok] / bottom[ok])
    values = np.concatenate(reps)
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedTest:
    """Model A minus model B on their shared tracks and runs."""

    difference: float  # mean over shared tracks of (A - B), each track averaged over the shared runs
    p_value: float
    tracks: int
    runs: int

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def paired_test(a: Outcomes, b: Outcomes, permutations: int = PERMUTATIONS, seed: int = 0) -> PairedTest | None:
    """Sign-flip permutation test of A against B; None when they share no (run seed, track) cell."""
    runs = [s for s in a.run_seeds if s in set(b.run_seeds)]
    tracks = [t for t in a.track_ids if t in set(b.track_ids)]
    if not runs or not tracks:
        return None
    ra = [a.run_seeds.index(s) for s in runs]
    rb = [b.run_seeds.index(s) for s in runs]
    ta = [a.track_ids.index(t) for t in tracks]
    tb = [b.track_ids.index(t) for t in tracks]
    va, ma = a.values[np.ix_(ra, ta)], a.mask[np.ix_(ra, ta)]
    vb, mb = b.values[np.ix_(rb, tb)], b.mask[np.ix_(rb, tb)]
    both = ma & mb
    scored = both.any(axis=0)
    if not scored.any():
        return None
    count = both.sum(axis=0)[scored]
    diff = ((va - vb) * both).sum(axis=0)[scored] / count  # per track, over the runs both scored it
    observed = float(diff.mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, permutations, _CHUNK):
        n = min(_CHUNK, permutations - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n, diff.size))
        extreme += int((np.abs(signs @ diff / diff.size) >= abs(observed) - 1e-12).sum())
    p = (1 + extreme) / (1 + permutations)
    return PairedTest(observed, float(p), int(scored.sum()), len(runs))
