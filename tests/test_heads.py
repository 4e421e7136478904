"""Batched head training: each run's numbers are those it gets alone; the pieces follow torch's own modules."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_protocol import SMALL, make_data

from singerbench.heads import PlateauSchedule, StackedAdam, StackedHeads
from singerbench.presets import QUICK
from singerbench.protocol import build_head, run_protocol

# fewer, shorter epochs than SMALL: the comparison trains every run twice
TINY = replace(SMALL, hidden_dim=32, steps_per_epoch=4, max_epochs=60)


def test_grouped_runs_equal_runs_trained_alone():
    """Same votes, epochs, losses and learning rates whether runs are trained together or one at a time."""
    data = make_data(n_singers=8, dim=16, n_seg=6, spread=1.0, cloned=[(0,), (1, 2)])
    kwargs = dict(runs=3, seed=3, class_counts=[5, 8], progress=False)
    together = run_protocol(data, TINY, **kwargs)
    alone = run_protocol(data, TINY, group_size=1, **kwargs)
    pairs = [(a, b) for a, b in zip(together.results, alone.results, strict=True)]
    assert len(pairs) == 6
    for a, b in pairs:
        assert (a.class_count, a.run, a.seed, a.classes) == (b.class_count, b.run, b.seed, b.classes)
        assert (a.epochs, a.best_epoch, a.best_val_loss, a.final_lr) == (b.epochs, b.best_epoch, b.best_val_loss, b.final_lr)
        for name in a.evals:
            assert [t.votes for t in a.evals[name].tracks] == [t.votes for t in b.evals[name].tracks]
        assert a.evals == b.evals
    # the case is not degenerate: runs stop at different epochs, so the stack shrinks while others go on
    assert len({r.epochs for r in together.results}) > 1


def test_stacked_forward_matches_the_torch_head():
    preset = replace(QUICK, hidden_dim=32)
    heads = [build_head(16, 5, preset, seed) for seed in (1, 2, 3)]
    stacked = StackedHeads([h.state_dict() for h in heads], preset, torch.device("cpu"))
    x = torch.randn(3, 20, 16, generator=torch.Generator().manual_seed(0))
    for h in heads:
        h.train()
    want = torch.stack([h(x[i]) for i, h in enumerate(heads)])
    got = stacked.forward(x, train=True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for i, h in enumerate(heads):  # BatchNorm running statistics follow BatchNorm1d's (unbiased var, momentum)
        torch.testing.assert_close(stacked.running_var[0][i, 0], h.model[1].running_var, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(stacked.running_mean[1][i, 0], h.model[4].running_mean, rtol=1e-5, atol=1e-6)
        h.eval()
    with torch.no_grad():
        want = torch.stack([h(x[i]) for i, h in enumerate(heads)])
        torch.testing.assert_close(stacked.forward(x, train=False), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("lrs", "shape", "chunk"), [
    ([0.01, 0.001, 0.1], (4, 5), 1 << 17),
    ([0.01, 0.01, 0.01], (4, 5), 1 << 17),
    ([0.01, 0.001, 0.1], (37, 61), 64),  # slices of 64 and a ragged last one per run
    ([0.01, 0.01, 0.01], (37, 61), 64),  # one shared rate: slices across the runs
])
def test_stacked_adam_is_torch_adam_per_run(lrs, shape, chunk):
    g = torch.Generator().manual_seed(0)
    init = torch.randn(3, *shape, generator=g)
    grads = [torch.randn(3, *shape, generator=g) for _ in range(6)]
    p = init.clone().requires_grad_()
    opt = StackedAdam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-9, weight_decay=0.01, runs=3, chunk=chunk)
    opt.lr = torch.tensor(lrs, dtype=torch.float64)
    singles = [init[i].clone().requires_grad_() for i in range(3)]
    torch_opts = [torch.optim.Adam([q], lr=lr, betas=(0.9, 0.999), eps=1e-9, weight_decay=0.01)
                  for q, lr in zip(singles, lrs, strict=True)]
    for grad in grads:
        p.grad = grad.clone()
        opt.step()
        for i, (q, o) in enumerate(zip(singles, torch_opts, strict=True)):
            q.grad = grad[i].clone()
            o.step()
    assert torch.equal(p.detach(), torch.stack([q.detach() for q in singles]))  # bit for bit


@pytest.mark.parametrize("patience", [0, 2, 3])
def test_plateau_schedule_matches_torch(patience):
    losses = [1.0, 0.9, 0.95, 0.9, 0.9, 0.89999, 0.91, 0.5, 0.6, 0.7, 0.8, 0.9, 0.49, 0.49, 0.49, 0.49, 0.49] * 3
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.01)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=patience,
                                                     threshold=1e-4, threshold_mode="rel", min_lr=1e-5, eps=1e-9)
    ours = PlateauSchedule(1, factor=0.1, patience=patience, threshold=1e-4, min_lr=1e-5, eps=1e-9)
    lr = 0.01
    seen = []
    for loss in losses:
        ref.step(loss)
        lr = ours.step(0, loss, lr)
        seen.append(lr)
        assert lr == opt.param_groups[0]["lr"]
    assert min(seen) < 0.01  # the schedule did reduce
    assert np.isclose(min(seen), 1e-5) or patience > 0


def test_scale_benchmark_reports_the_projection_and_the_peak_floor(capsys):
    """`perf --scale` on a small case: side-by-side capped timings, one whole run, then the projection of all
    runs from it and the time the same work takes at the measured matmul peak (which must be the shorter)."""
    import re

    from singerbench.perfscale import ScaleConfig, main

    main(ScaleConfig(singers=6, dim=8, segments=4, runs=3), "quick", probe_epochs=1, full_runs=1)
    out = capsys.readouterr().out
    assert "alone:" in out and "together:" in out and "protocol: 1 run(s) in" in out
    m = re.search(r"3 runs:  projected at the grouped FLOP rate above ([\d.]+) min; .* the same work takes ([\d.]+) min", out)
    assert m is not None, out
    assert float(m.group(2)) <= float(m.group(1))
    main(ScaleConfig(singers=6, dim=8, segments=4, runs=3), "quick", probe_epochs=1, full=True)  # all 3 runs whole
    assert re.search(r"3 runs:  measured [\d.]+ min; at 100 % of the measured peak", capsys.readouterr().out)
