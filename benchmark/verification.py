"""Verification without a head: cosine scores of track embeddings on target / non-target trials, EER and minDCF.

Open-set use (who sings this, among voices never trained on?) works with trials, not classes. A track's
embedding is the mean of its segment embeddings, L2-normalised. A trial pairs an eval track with a training
song: *target* when the song's singer is one of the track's targets (a clone's targets are the voices it
clones), *non-target* otherwise; its score is the cosine of the two embeddings. Per eval set the result
records the equal error rate and the normalised minimum detection cost (p_target 0.01, C_miss = C_fa = 1),
with 95 % intervals by bootstrap over eval tracks (docs/results.md states every rule).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from singerbench.protocol import ProtocolData, TrackEmbeddings

P_TARGET = 0.01
C_MISS = 1.0
C_FA = 1.0
RESAMPLES = 1000
#: threshold groups of the bootstrap replicates (exact up to this many distinct scores; docs/results.md)
MAX_THRESHOLDS = 2048


def _rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every threshold: below all scores, then just above each distinct score
    (a trial is accepted when its score >= the threshold)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    n_t, n_n = int(y.sum()), int((~y).sum())
    if n_t == 0 or n_n == 0:
        raise ValueError("verification needs at least one target and one non-target trial")
    order = np.argsort(s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) > 0), len(s) - 1]
    p_miss = np.r_[0.0, np.cumsum(y)[last] / n_t]
    p_fa = np.r_[1.0, 1.0 - np.cumsum(~y)[last] / n_n]
    return p_miss, p_fa


def replicate_metrics(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(EER, minDCF)`` for each row of ``weights`` (replicates × eval tracks): every trial of track i counted
    ``weights[r, i]`` times. Trials are sorted once and tallied per (track, threshold group), so a replicate
    costs one small matrix product; with more than MAX_THRESHOLDS distinct scores, neighbouring scores share a
    threshold group (the point estimate is always exact). Rows without a target or a non-target are NaN."""
    n_tracks, per_track = scores.shape
    flat = scores.ravel()
    order = np.argsort(flat, kind="mergesort")
    distinct = np.r_[0, np.cumsum(np.diff(flat[order]) > 0)]
    n_distinct = int(distinct[-1]) + 1
    grp = distinct if n_distinct <= MAX_THRESHOLDS else distinct * MAX_THRESHOLDS // n_distinct
    n_groups = int(grp[-1]) + 1
    track = np.repeat(np.arange(n_tracks), per_track)[order]
    y = labels.ravel()[order]
    cell = track * n_groups + grp
    tally_t = np.bincount(cell[y], minlength=n_tracks * n_groups).reshape(n_tracks, n_groups).astype(np.float64)
    tally_n = np.bincount(cell[~y], minlength=n_tracks * n_groups).reshape(n_tracks, n_groups).astype(np.float64)
    out = np.full((weights.shape[0], 2), np.nan)
    for start in range(0, weights.shape[0], 100):
        w = np.asarray(weights[start : start + 100], dtype=np.float64)
        ct, cn = np.cumsum(w @ tally_t, axis=1), np.cumsum(w @ tally_n, axis=1)
        for k in range(w.shape[0]):
            if ct[k, -1] <= 0 or cn[k, -1] <= 0:
                continue
            p_miss = np.r_[0.0, ct[k] / ct[k, -1]]
            p_fa = np.r_[1.0, 1.0 - cn[k] / cn[k, -1]]
            out[start + k] = (_eer(p_miss, p_fa), _min_dcf(p_miss, p_fa, P_TARGET, C_MISS, C_FA))
    return out


def _eer(p_miss: np.ndarray, p_fa: np.ndarray) -> float:
    d = p_miss - p_fa  # rises from -1 to +1
    i = int(np.flatnonzero(d >= 0)[0])
    if d[i] == 0 or i == 0:
        return float(p_miss[i])
    # between threshold i-1 (d < 0) and i (d > 0): where the straight lines cross
    w = -d[i - 1] / (d[i] - d[i - 1])
    return float(p_miss[i - 1] + w * (p_miss[i] - p_miss[i - 1]))


def _min_dcf(p_miss: np.ndarray, p_fa: np.ndarray, p_target: float, c_miss: float, c_fa: float) -> float:
    cost = c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def eer(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Equal error rate: where the miss rate (rising) meets the false-alarm rate (falling), linearly interpolated
    between the two thresholds that bracket the crossing."""
    return _eer(*_rates(np.asarray(scores), np.asarray(labels)))


def min_dcf(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[bool] | np.ndarray,
    p_target: float = P_TARGET,
    c_miss: float = C_MISS,
    c_fa: float = C_FA,
) -> float:
    """Normalised minimum detection cost: min over thresholds of C_miss·P_miss·p + C_fa·P_fa·(1-p), divided by
    the cost of the best trivial system, min(C_miss·p, C_fa·(1-p))."""
    return _min_dcf(*_rates(np.asarray(scores), np.asarray(labels)), p_target, c_miss, c_fa)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row (last axis) L2-normalised in float64; an all-zero row stays zero."""
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def track_vectors(tracks: Sequence[TrackEmbeddings]) -> np.ndarray:
    """One L2-normalised vector per track: the mean of its segment embeddings."""
    return unit_rows(np.stack([t.segments.astype(np.float64).mean(axis=0) for t in tracks]))


def trials(data: ProtocolData, eval_set: str) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, labels)`` of shape (eval tracks, training songs): cosine and target flag of every trial."""
    tracks = data.eval_sets[eval_set]
    scores = track_vectors(tracks) @ track_vectors(data.train).T
    train_singer = np.array([t.targets[0] for t in data.train])
    labels = np.stack([np.isin(train_singer, list(t.targets)) for t in tracks])
    return scores, labels


def verify(data: ProtocolData, seed: int = 0, resamples: int = RESAMPLES) -> dict[str, dict]:
    """Per eval set: ``{eer, eer_ci, min_dcf, min_dcf_ci, p_target, c_miss, c_fa, target_trials, nontarget_trials,
    tracks}``.

    The intervals are percentile bootstraps over eval tracks: each replicate draws the tracks with replacement and
    counts each track's trials as often as it was drawn (:func:`replicate_metrics`); replicates without a target
    or a non-target trial are skipped.
    """
    out: dict[str, dict] = {}
    rng = np.random.default_rng(seed)
    for name, tracks in data.eval_sets.items():
        if not tracks:
            continue
        scores, labels = trials(data, name)
        if labels.all() or not labels.any():
            continue
        rates = _rates(scores, labels)
        e, d = _eer(*rates), _min_dcf(*rates, P_TARGET, C_MISS, C_FA)
        draws = rng.integers(0, len(tracks), size=(resamples, len(tracks)))
        weights = np.stack([np.bincount(row, minlength=len(tracks)) for row in draws])
        reps = replicate_metrics(scores, labels, weights)
        reps = reps[~np.isnan(reps[:, 0])]
        arr = reps if len(reps) else np.asarray([[e, d]])
        lo, hi = np.percentile(arr, [2.5, 97.5], axis=0)
        out[name] = {
            "eer": e, "eer_ci": [float(lo[0]), float(hi[0])],
            "min_dcf": d, "min_dcf_ci": [float(lo[1]), float(hi[1])],
            "p_target": P_TARGET, "c_miss": C_MISS, "c_fa": C_FA,
            "target_trials": int(labels.sum()), "nontarget_trials": int((~labels).sum()), "tracks": len(tracks),
        }
    return out
