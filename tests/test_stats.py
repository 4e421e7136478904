"""Statistics and verification metrics on hand-made and simulated numbers: EER/minDCF, bootstrap CI, paired test."""

from __future__ import annotations

import numpy as np
import pytest

from singerbench.protocol import ProtocolData, TrackEmbeddings
from singerbench.stats import bootstrap_ci, outcomes, paired_test
from singerbench.verification import eer, min_dcf, trials, verify

TARGETS = [0.9, 0.8, 0.3]
NONTARGETS = [0.7, 0.2, 0.1, 0.05]


def hand_made() -> tuple[np.ndarray, np.ndarray]:
    scores = np.array(TARGETS + NONTARGETS)
    labels = np.array([True] * len(TARGETS) + [False] * len(NONTARGETS))
    return scores, labels


def test_eer_on_hand_made_scores():
    # Accepting score >= threshold, the (P_miss, P_fa) pairs are, from the lowest threshold up:
    # (0, 1) (0, 3/4) (0, 1/2) (0, 1/4) (1/3, 1/4) (1/3, 0) (2/3, 0) (1, 0). The miss rate crosses the false-alarm
    # rate between (0, 1/4) and (1/3, 1/4): on that segment P_fa stays 1/4, so the EER is exactly 1/4.
    scores, labels = hand_made()
    assert eer(scores, labels) == pytest.approx(0.25)
    # order does not matter
    perm = np.random.default_rng(0).permutation(len(scores))
    assert eer(scores[perm], labels[perm]) == pytest.approx(0.25)
    # perfect separation; everything inverted
    assert eer([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 0.0
    assert eer([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 1.0
    # symmetric case: one error on each side out of 4, at the same threshold
    assert eer([0.9, 0.8, 0.7, 0.2, 0.75, 0.1, 0.05, 0.0], [True] * 4 + [False] * 4) == pytest.approx(0.25)


def test_min_dcf_on_hand_made_scores():
    scores, labels = hand_made()
    # cost / min(p, 1-p) at each threshold with p = 0.01: 99, 74.25, 49.5, 24.75, 25.08, 1/3, 2/3, 1
    assert min_dcf(scores, labels) == pytest.approx(1 / 3)
    # with p = 0.5 the normalised cost is P_miss + P_fa: 1, .75, .5, .25, .583, .333, .667, 1
    assert min_dcf(scores, labels, p_target=0.5) == pytest.approx(0.25)
    # direct computation over every threshold, written out independently
    best = min(
        (np.mean(np.array(TARGETS) < th) * 0.01 + np.mean(np.array(NONTARGETS) >= th) * 0.99) / 0.01
        for th in [-np.inf, *sorted(scores + 1e-9)]
    )
    assert min_dcf(scores, labels) == pytest.approx(best)
    with pytest.raises(ValueError, match="target"):
        eer([0.1, 0.2], [True, True])


def test_trials_pair_eval_tracks_with_training_songs_of_their_targets():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8))

    def track(i: str, targets: tuple[int, ...]) -> TrackEmbeddings:
        mean = centres[list(targets)].mean(axis=0)
        return TrackEmbeddings(i, targets, (mean + 0.05 * rng.normal(size=(4, 8))).astype(np.float32))

    data = ProtocolData(
        singers=["a", "b", "c"],
        train=[track(f"tr{s}{k}", (s,)) for s in range(3) for k in range(2)],
        val=[track(f"va{s}", (s,)) for s in range(3)],
        eval_sets={"test": [track(f"te{s}", (s,)) for s in range(3)], "cloned": [track("duet", (0, 1))]},
    )
    scores, labels = trials(data, "test")
    assert scores.shape == (3, 6) and labels.sum() == 6  # each test track: its singer's 2 songs
    assert labels[0].tolist() == [True, True, False, False, False, False]
    _, duet = trials(data, "cloned")
    assert duet.tolist() == [[True, True, True, True, False, False]]  # a duet's targets are both voices
    v = verify(data, resamples=50)
    assert v["test"]["eer"] == 0.0 and v["test"]["target_trials"] == 6 and v["test"]["nontarget_trials"] == 12
    assert v["test"]["eer_ci"][0] <= v["test"]["eer"] <= v["test"]["eer_ci"][1]


def simulated(rng: np.random.Generator, runs: int, tracks: int, p: np.ndarray) -> np.ndarray:
    return (rng.random((runs, tracks)) < p).astype(float)


def as_outcomes(matrix: np.ndarray):
    """Outcomes of a (runs, tracks) 0/1 matrix, tracks named t0, t1, ..."""
    return outcomes([(r, {f"t{t}": v for t, v in enumerate(row)}) for r, row in enumerate(matrix)])


def test_bootstrap_interval_covers_the_true_value_about_95_percent_of_the_time():
    # Each simulated eval set: 40 tracks whose difficulty is drawn from Beta(7, 3) (population mean 0.7), scored
    # by 5 heads; the interval should contain 0.7 in about 95 % of the simulated eval sets.
    rng = np.random.default_rng(1)
    hits, sims = 0, 300
    for k in range(sims):
        p = rng.beta(7, 3, size=40)
        o = as_outcomes(simulated(rng, 5, 40, p))
        lo, hi = bootstrap_ci(o, resamples=400, seed=k)
        hits += lo <= 0.7 <= hi
    coverage = hits / sims
    assert 0.90 <= coverage <= 0.995, coverage


def test_bootstrap_respects_tracks_missing_from_runs():
    # at a reduced class count a run scores only some tracks: those cells must not count as wrong
    o = outcomes([(0, {"a": 1.0, "b": 1.0}), (1, {"c": 1.0})])
    assert o.mean() == 1.0 and o.n_tracks == 3
    assert bootstrap_ci(o, resamples=200) == (1.0, 1.0)


def test_paired_test_finds_a_planted_difference_and_none_between_identical_models():
    rng = np.random.default_rng(2)
    p = rng.beta(6, 4, size=60)
    base = simulated(rng, 5, 60, p)
    a = as_outcomes(base)
    same = paired_test(a, a)
    assert same is not None and same.difference == 0.0 and same.p_value == 1.0 and not same.significant

    better = base.copy()
    better[:, :20] = 1.0  # model B gets 20 more tracks right in every run
    b = as_outcomes(better)
    planted = paired_test(b, a)
    assert planted.difference > 0.1 and planted.p_value < 0.01 and planted.significant
    assert planted.tracks == 60 and planted.runs == 5


def test_paired_test_false_alarm_rate_under_no_difference_is_near_alpha():
    rng = np.random.default_rng(3)
    alarms, sims = 0, 200
    for k in range(sims):
        p = rng.beta(6, 4, size=40)
        a = as_outcomes(simulated(rng, 3, 40, p))
        b = as_outcomes(simulated(rng, 3, 40, p))
        alarms += paired_test(a, b, permutations=500, seed=k).significant
    assert alarms / sims <= 0.10


def test_paired_test_needs_shared_tracks_and_seeds():
    a = outcomes([(1, {"x": 1.0})])
    assert paired_test(a, outcomes([(2, {"x": 1.0})])) is None  # another seed
    assert paired_test(a, outcomes([(1, {"y": 1.0})])) is None  # another track


def test_weighted_bootstrap_replicate_equals_the_metrics_of_the_drawn_tracks():
    # a replicate counts each track's trials as often as the track was drawn: the same as repeating them
    from singerbench.verification import replicate_metrics

    rng = np.random.default_rng(4)
    scores = rng.normal(size=(6, 9))
    labels = np.zeros((6, 9), dtype=bool)
    labels[np.arange(6), rng.integers(0, 9, size=6)] = True
    scores[labels] += 1.0
    picks = [np.array([0, 0, 2, 3, 3, 5]), np.arange(6), np.array([1, 1, 1, 4, 4, 0])]
    got = replicate_metrics(scores, labels, np.stack([np.bincount(p, minlength=6) for p in picks]))
    for (e, d), pick in zip(got, picks, strict=True):
        assert e == pytest.approx(eer(scores[pick].ravel(), labels[pick].ravel()))
        assert d == pytest.approx(min_dcf(scores[pick].ravel(), labels[pick].ravel()))
    none = replicate_metrics(scores, labels, np.array([[0, 0, 0, 0, 0, 0]]))
    assert np.isnan(none).all()  # a replicate with no trial at all carries no number
