"""The protocol station: presets, the vote and its tie rule, the multi-target rule, sampling, whole runs."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from singerbench.errors import UserError
from singerbench.presets import PAPER, PAPER_MEANSOFTMAX, PRESETS, QUICK, Preset, deviations_of, get_preset
from singerbench.protocol import (
    VOTERS,
    BalancedSampler,
    ProtocolData,
    TrackEmbeddings,
    build_head,
    is_correct,
    reference_vote,
    run_protocol,
    run_seed,
    select_classes,
    summarize,
    top_k,
    vote,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# `quick` with a narrow head: same rules, a fraction of the CPU time (tests only).
SMALL = replace(QUICK, name="quick-test", hidden_dim=64)


def make_data(
    n_singers: int = 8,
    dim: int = 16,
    n_train: int = 3,
    n_seg: int = 10,
    spread: float = 4.0,
    seed: int = 0,
    cloned: list[tuple[int, ...]] | None = None,
) -> ProtocolData:
    """Gaussian clusters, one centre per singer (spread 0: every singer draws from the same distribution)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_singers, dim)) * spread

    def track(targets: tuple[int, ...], tid: str) -> TrackEmbeddings:
        centre = centres[list(targets)].mean(axis=0)
        return TrackEmbeddings(tid, targets, (centre + rng.normal(size=(n_seg, dim))).astype(np.float32))

    data = ProtocolData(
        singers=[f"singer{i}" for i in range(n_singers)],
        train=[track((i,), f"s{i}-train{j}") for i in range(n_singers) for j in range(n_train)],
        val=[track((i,), f"s{i}-val") for i in range(n_singers)],
        eval_sets={"test": [track((i,), f"s{i}-test") for i in range(n_singers)]},
    )
    if cloned is not None:
        data.eval_sets["cloned"] = [track(t, f"clone{k}") for k, t in enumerate(cloned)]
    return data


# --- presets --------------------------------------------------------------------------------------------------


def test_paper_preset_is_the_reference_code():
    p = get_preset("paper")
    assert (p.name, p.version, p.leaderboard) == ("paper", "2", True)
    assert p.vote_rule == "topk"  # the reference's torch.argmax / torch.topk of the vote histogram
    assert (p.hidden_dim, p.hidden_layers, p.batch_norm, p.logit_norm) == (1024, 2, True, True)
    assert (p.optimizer, p.lr, p.adam_betas, p.adam_eps, p.weight_decay) == ("adam", 0.01, (0.9, 0.999), 1e-9, 0.0)
    assert (p.batch_size, p.steps_per_epoch) == (100, 32)
    assert (p.val_segments_per_singer, p.val_batch_size) == (4, 100)
    assert (p.scheduler_factor, p.scheduler_patience, p.scheduler_threshold) == (0.1, 10, 1e-4)
    assert (p.scheduler_min_lr, p.scheduler_eps) == (1e-5, 1e-9)  # min_lr = lr * 0.001 in the paper's code
    assert p.early_stop_patience == 20
    assert p.max_epochs == 1000  # our safety cap, not in the paper
    assert p.top_k == 5
    assert (p.sweep_start, p.sweep_stop, p.sweep_step) == (100, 1000, 100)
    assert p.deviations == ()


def test_registry_and_deviations():
    assert all(name == p.name for name, p in PRESETS.items())
    assert {"paper", "paper-meansoftmax", "paper-nologitnorm", "quick"} <= set(PRESETS)
    mean = PRESETS["paper-meansoftmax"]
    differs = {f.name for f in fields(Preset) if getattr(mean, f.name) != getattr(PAPER, f.name)}
    assert differs == {"name", "version", "description", "vote_rule", "deviations"}
    assert mean.vote_rule == "mean-softmax" and len(mean.deviations) == 1 and mean.leaderboard
    assert set(VOTERS) == {"topk", "mean-softmax"}
    with pytest.raises(UserError, match="vote_rule 'median'"):
        replace(PAPER, vote_rule="median")
    # results written by the v1 presets (mean-softmax ties) are known to deviate
    assert deviations_of("paper", "1") == PAPER_MEANSOFTMAX.deviations and deviations_of("paper", "2") == ()
    assert deviations_of("paper", "0") is None
    nolog = PRESETS["paper-nologitnorm"]
    differs = {f.name for f in fields(Preset) if getattr(nolog, f.name) != getattr(PAPER, f.name)}
    assert differs == {"name", "description", "logit_norm", "deviations"}  # same version as paper
    assert nolog.logit_norm is False and nolog.deviations
    assert QUICK.leaderboard is False and (QUICK.steps_per_epoch, QUICK.scheduler_patience) == (8, 3)
    assert QUICK.early_stop_patience == 5 and len(QUICK.deviations) >= 3
    with pytest.raises(UserError, match="unknown preset 'papr'.*paper"):
        get_preset("papr")
    with pytest.raises(UserError, match="optimizer"):
        replace(PAPER, optimizer="sgd")


def test_params_and_sweep_counts():
    params = PAPER.params()
    assert "name" not in params and params["adam_betas"] == [0.9, 0.999] and params["lr"] == 0.01
    assert PAPER.sweep_counts(1000) == list(range(100, 1001, 100))
    assert PAPER.sweep_counts(450) == [100, 200, 300, 400]
    assert PAPER.sweep_counts(10) == [10]  # small sets: the small steps that fit, then all singers
    assert PAPER.sweep_counts(60) == [10, 25, 50, 60]
    assert PAPER.sweep_counts(30) == [10, 25, 30] and PAPER.sweep_counts(4) == [4]
    assert PAPER.sweep_counts(100) == [10, 25, 50, 100] and params["small_sweep"] == [10, 25, 50]
    assert PAPER.sweep_counts(101) == [100]


# --- the vote, top-k and the multi-target rule ----------------------------------------------------------------


def test_vote_majority():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])
    hist, ranked = vote(probs)
    assert hist.tolist() == [2, 1, 0]
    assert ranked.tolist() == [0, 1, 2]


def test_vote_tie_is_broken_by_mean_probability_not_class_index():
    # 2-2 tie between classes 0 and 2: class 2's segments are confident, class 0's are not.
    probs = np.array([[0.40, 0.30, 0.30], [0.40, 0.35, 0.25], [0.05, 0.05, 0.90], [0.10, 0.10, 0.80]])
    hist, ranked = vote(probs)
    assert hist.tolist() == [2, 0, 2]
    # mean probabilities: class 0 = 0.2375, class 2 = 0.5625 -> class 2 wins, although index order says 0
    assert ranked[0] == 2 and ranked.tolist() == [2, 0, 1]
    # mirrored: now the lower index has the higher mean, so it wins (the rule is not "highest index" either)
    hist, ranked = vote(probs[:, ::-1])
    assert hist.tolist() == [2, 0, 2] and ranked[0] == 0


def test_classes_without_votes_are_ranked_by_mean_probability():
    probs = np.array([[0.5, 0.1, 0.3, 0.05, 0.05], [0.6, 0.05, 0.2, 0.1, 0.05]])
    hist, ranked = vote(probs)
    assert hist.tolist() == [2, 0, 0, 0, 0]
    assert ranked.tolist() == [0, 2, 1, 3, 4]  # means: .55, .075, .25, .075, .05 -> 1 and 3 tie: lower index first


def test_top_k_from_histogram():
    hist, ranked = vote(np.eye(7)[[3, 3, 3, 1, 1, 5, 6, 0]] * 0.9 + 0.01)
    assert hist.tolist() == [1, 2, 0, 3, 0, 1, 1]
    assert top_k(ranked, 5).tolist()[:2] == [3, 1]
    assert set(top_k(ranked, 5).tolist()[2:]) == {0, 5, 6}
    assert top_k(np.array([1, 0]), 5).tolist() == [1, 0]  # fewer classes than k


def _probs_for(hist: list[int]) -> torch.Tensor:
    """Segment probabilities whose per-segment argmax gives the histogram ``hist`` (one segment per vote)."""
    rows = [c for c, n in enumerate(hist) for _ in range(n)]
    probs = torch.full((len(rows), len(hist)), 0.5 / (len(hist) - 1))
    probs[torch.arange(len(rows)), torch.tensor(rows)] = 0.5
    return probs


TIED = [
    [0, 0, 3, 0, 0, 1, 0, 0, 0, 0],  # the example: four classes tie at 0 votes for the last top-5 slots
    [2, 0, 2, 0, 2, 0, 0, 1],  # three-way tie at the top: argmax takes the first
    [1, 1, 1, 1, 1, 1, 1],  # everything ties
    [0, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
    [5, 0, 0],  # fewer classes than k: topk over all of them
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("hist", TIED)
def test_reference_vote_ranks_as_torch_topk_and_argmax_on_the_same_device(hist, device):
    ranking = reference_vote(_probs_for(hist).to(device), 5)
    h = torch.tensor([hist], dtype=torch.float32, device=device)
    h /= h.sum()
    assert ranking.hist.tolist() == hist
    assert ranking.top1 == int(torch.argmax(h, dim=-1).item()) == hist.index(max(hist))  # first maximal index
    assert ranking.topk.tolist() == torch.topk(h, min(5, len(hist))).indices.squeeze(0).cpu().tolist()


def test_reference_vote_on_cpu_keeps_torch_topk_order_not_index_order():
    ranking = reference_vote(_probs_for(TIED[0]), 5)
    assert ranking.top1 == 2 and ranking.topk[:2].tolist() == [2, 5]
    # torch's CPU topk returns the zero-vote ties as [8, 7, 9], not index order [0, 1, 3] (torch 2.x CPU kernel)
    assert ranking.topk.tolist() == [2, 5, 8, 7, 9]


def test_mean_softmax_voter_matches_vote():
    probs = torch.tensor([[0.40, 0.30, 0.30], [0.40, 0.35, 0.25], [0.05, 0.05, 0.90], [0.10, 0.10, 0.80]])
    ranking = VOTERS["mean-softmax"](probs, 2)
    assert ranking.hist.tolist() == [2, 0, 2] and ranking.top1 == 2 and ranking.topk.tolist() == [2, 0]
    assert VOTERS["topk"](probs, 2).top1 == 0  # the reference's argmax: first of the tied classes


def test_protocol_predictions_follow_the_presets_vote_rule():
    data = make_data(n_singers=12, spread=0.3, n_seg=4, seed=3)
    for preset in (SMALL, replace(SMALL, vote_rule="mean-softmax")):
        out = run_protocol(data, preset, runs=1, seed=0, progress=False)
        for p in out.results[0].evals["test"].tracks:
            classes = out.results[0].classes
            h = torch.tensor([[p.votes.get(s, 0) for s in classes]], dtype=torch.float32)
            h /= h.sum()
            if preset.vote_rule == "topk":
                assert p.top5 == [classes[i] for i in torch.topk(h, 5).indices[0].tolist()]
                assert p.prediction == classes[int(torch.argmax(h))]
            else:  # the ranked classes start with those of most votes
                assert p.votes.get(p.top5[0], 0) == max(p.votes.values())
            assert p.top1_correct == (p.prediction in p.targets)
            assert p.top5_correct == bool(set(p.top5) & set(p.targets))


def test_multi_target_rule():
    ranked = np.array([3, 0, 5, 6, 2, 1, 4])
    duet = (1, 3)
    assert is_correct(ranked, duet, 1)  # either target predicted counts
    assert is_correct(ranked, (3, 1), 1)
    assert not is_correct(ranked, (1, 4), 1)
    assert not is_correct(ranked, (1, 4), 5)  # both targets ranked 6th and 7th
    assert is_correct(ranked, (2, 4), 5)  # one target among the top 5
    assert is_correct(ranked, (0,), 5) and not is_correct(ranked, (0,), 1)


# --- sampler, head, seeds -------------------------------------------------------------------------------------


def test_balanced_sampler_draws_singer_then_track_then_segment():
    # class 0: one track of 1 segment; class 1: tracks of 2 and 98 segments; class 2: one track of 100
    ranges = [[(0, 1)], [(1, 2), (3, 98)], [(101, 100)]]
    sampler = BalancedSampler(ranges, np.random.default_rng(0))
    rows, labels = zip(*(sampler.draw(100) for _ in range(300)), strict=True)
    rows, labels = np.concatenate(rows), np.concatenate(labels)
    assert np.allclose(np.bincount(labels) / labels.size, 1 / 3, atol=0.02)  # balanced over singers
    c1 = rows[labels == 1]
    assert abs(np.mean(c1 < 3) - 0.5) < 0.03  # each track of singer 1 half the time, despite 2 vs 98 segments
    for c, rs in enumerate(ranges):
        inside = np.zeros(rows.size, bool)
        for s, n in rs:
            inside |= (rows >= s) & (rows < s + n)
        assert inside[labels == c].all()
    again = BalancedSampler(ranges, np.random.default_rng(0)).draw(100)
    first = BalancedSampler(ranges, np.random.default_rng(0)).draw(100)
    assert np.array_equal(again[0], first[0]) and np.array_equal(again[1], first[1])


def test_head_builder():
    state = torch.random.get_rng_state()
    head = build_head(16, 5, PAPER, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    kinds = [type(m).__name__ for m in head.model]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert [m.out_features for m in head.model if isinstance(m, torch.nn.Linear)] == [1024, 1024, 5]
    same = build_head(16, 5, PAPER, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(head.state_dict().values(), same.state_dict().values(), strict=True))
    head.eval()
    out = head(torch.randn(4, 16))
    assert torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)  # logits L2-normalised
    plain = build_head(16, 5, PRESETS["paper-nologitnorm"], seed=3).eval()
    assert not torch.allclose(plain(torch.randn(4, 16)).norm(dim=1), torch.ones(4), atol=1e-3)


def test_summarize_uses_sample_std():
    s = summarize([0.5, 1.0])
    assert s["mean"] == 0.75 and math.isclose(s["std"], math.sqrt(0.125)) and s["values"] == [0.5, 1.0]
    assert summarize([0.3])["std"] == 0.0


def test_seed_derivation():
    assert run_seed(0, 0) == int(np.random.SeedSequence([0, 0]).generate_state(1)[0])
    assert len({run_seed(0, r) for r in range(10)}) == 10
    assert run_seed(1, 0) != run_seed(0, 0)


def test_select_classes_keeps_required_singers():
    picks = [select_classes(20, [3, 17], 6, np.random.default_rng(s)).tolist() for s in range(5)]
    for p in picks:
        assert len(p) == 6 and {3, 17} <= set(p) and p == sorted(p)
    assert len({tuple(p) for p in picks}) > 1  # the others are sampled
    assert select_classes(20, [3], 6, np.random.default_rng(1)).tolist() == select_classes(
        20, [3], 6, np.random.default_rng(1)
    ).tolist()
    with pytest.raises(UserError, match="below"):
        select_classes(20, [1, 2, 3], 2, np.random.default_rng(0))


# --- input validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: d.train.pop(0) and d.train.pop(0) and d.train.pop(0), "singer 'singer0' has no training track"),
        (lambda d: d.val.pop(1), "singer 'singer1' has 0 validation tracks"),
        (lambda d: setattr(d.eval_sets["test"][2], "segments", np.zeros((0, 16), np.float32)), "'s2-test'.*empty"),
        (lambda d: d.val[3].segments.__setitem__((0, 0), np.nan), "'s3-val'.*NaN"),
        (lambda d: setattr(d.train[4], "segments", np.zeros((3, 15), np.float32)), "'s1-train1'.*size 15"),
        (lambda d: setattr(d.train[0], "targets", (0, 1)), "'s0-train0' has 2 targets"),
        (lambda d: setattr(d.eval_sets["test"][0], "targets", (9,)), "'s0-test'.*outside"),
    ],
)
def test_bad_inputs_name_the_track(breakage, message):
    data = make_data()
    breakage(data)
    with pytest.raises(UserError, match=message):
        run_protocol(data, SMALL, runs=1, progress=False)


def test_bad_class_counts_and_runs():
    data = make_data(cloned=[(0, 1), (2,)])
    with pytest.raises(UserError, match="class count 1 is out of range: it must lie between 2 and 8"):
        run_protocol(data, SMALL, runs=1, class_counts=[1], progress=False)
    with pytest.raises(UserError, match="class count 9"):
        run_protocol(data, SMALL, runs=1, class_counts=[9], progress=False)
    with pytest.raises(UserError, match="runs"):
        run_protocol(data, SMALL, runs=0, progress=False)


# --- whole runs -----------------------------------------------------------------------------------------------


def test_a_step_below_the_cloned_targets_scores_real_tracks_only():
    """Class count 2 < the 3 cloned target singers: classes drawn from all singers, the cloned set not scored;
    the full step beside it is unchanged by the real-only one (a step's numbers depend on its own streams)."""
    data = make_data(cloned=[(0, 1), (2,)])
    small = replace(QUICK, hidden_dim=32)  # the rule, not the head's size, is under test
    both = run_protocol(data, small, runs=3, seed=1, class_counts=[2, 8], progress=False)
    alone = run_protocol(data, small, runs=3, seed=1, class_counts=[8], progress=False)
    real_only = [r for r in both.results if r.class_count == 2]
    assert [set(r.evals) for r in real_only] == [{"test"}] * 3
    assert all(r.evals["test"].n_tracks == 2 for r in real_only)
    assert any(not set(r.classes) <= {"singer0", "singer1", "singer2"} for r in real_only)  # not the targets
    assert set(both.aggregate()[2]) == {"test"} and set(both.aggregate()[8]) == {"test", "cloned"}
    assert [r for r in both.results if r.class_count == 8] == alone.results


def test_separated_clusters_are_identified_with_the_quick_preset():
    data = make_data(cloned=[(2, 5), (7,)])
    out = run_protocol(data, QUICK, runs=2, seed=0, progress=False)
    agg = out.aggregate()[8]
    assert agg["test"]["top1"]["values"] == [1.0, 1.0] and agg["test"]["top5"]["mean"] == 1.0
    assert agg["test"]["tracks"] == 8 and agg["cloned"]["tracks"] == 2
    assert agg["cloned"]["top1"]["mean"] == 1.0  # a blend of 2 and 5 is attributed to one of them
    for r in out.results:
        assert not r.max_epochs_bound and r.best_epoch < r.epochs <= QUICK.max_epochs
        assert r.epochs - r.best_epoch - 1 == QUICK.early_stop_patience  # stopped by early stopping
        assert r.classes == data.singers and r.seed == run_seed(0, r.run)
        pred = {p.track_id: p for p in r.evals["test"].tracks}["s4-test"]
        assert pred.targets == ["singer4"] and pred.prediction == "singer4" and pred.votes == {"singer4": 10}
        assert pred.top5[0] == "singer4" and len(pred.top5) == 5 and pred.top1_correct
        duet = r.evals["cloned"].tracks[0]
        assert duet.targets == ["singer2", "singer5"] and duet.prediction in duet.targets


def test_random_labels_score_near_chance():
    data = make_data(n_singers=16, spread=0.0, seed=1)
    out = run_protocol(data, SMALL, runs=2, seed=0, progress=False)
    agg = out.aggregate()[16]["test"]
    assert agg["top1"]["mean"] <= 0.25  # chance 1/16
    assert agg["top5"]["mean"] <= 0.6  # chance 5/16


def test_same_seed_same_outcome_and_another_seed_differs():
    data = make_data(n_singers=6, spread=0.5, cloned=[(1, 4)])
    a = run_protocol(data, SMALL, runs=2, seed=7, progress=False)
    b = run_protocol(data, SMALL, runs=2, seed=7, progress=False)
    assert a == b  # every field but the wall time, down to every vote and loss
    c = run_protocol(data, SMALL, runs=2, seed=8, progress=False)
    assert [r.best_val_loss for r in c.results] != [r.best_val_loss for r in a.results]


def test_sweep_always_includes_cloned_targets():
    data = make_data(n_singers=12, cloned=[(3, 7), (10,)])
    out = run_protocol(data, SMALL, runs=2, seed=0, class_counts=[4, 12], progress=False)
    small = [r for r in out.results if r.class_count == 4]
    assert len(small) == 2 and len(out.results) == 4
    for r in small:
        assert len(r.classes) == 4 and {"singer3", "singer7", "singer10"} <= set(r.classes)
        assert r.evals["cloned"].n_tracks == 2
        tested = {p.targets[0] for p in r.evals["test"].tracks}
        assert tested == set(r.classes)  # only the test tracks of included singers
    assert len({tuple(r.classes) for r in small}) == 2  # the fourth singer is sampled per run
    assert out.aggregate()[12]["test"]["tracks"] == 12


def test_max_epochs_cap_is_recorded_and_progress_shows_val_loss(capsys):
    capped = replace(SMALL, max_epochs=2)
    out = run_protocol(make_data(n_singers=4), capped, runs=1, progress=True)
    r = out.results[0]
    assert r.epochs == 2 and r.max_epochs_bound and out.any_max_epochs_bound
    assert "val_loss" in capsys.readouterr().err
