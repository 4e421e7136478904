"""``python -m singerbench.perf --scale``: the protocol on FMA-sized synthetic embeddings, against the matmul peak.

The data has the shape of the paper's FMA split (1,019 singers, D = 2,048; per singer 3 training tracks, one
validation and one test track of 20 segments each), drawn as Gaussian clusters from a fixed seed. The peak
is a plain ``torch.mm`` of two 2,048 × 2,048 matrices timed in the same process, so the fraction of peak is a
ratio of two timings taken side by side (these machines are shared and noisy). FLOPs counted per head step
are the matrix products of the forward pass, the weight gradients and the input gradients of all but the
first layer; per epoch the validation forward pass, per run the evaluation forward pass are added.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from singerbench.heads import step_flops
from singerbench.presets import Preset, get_preset
from singerbench.protocol import ProtocolData, TrackEmbeddings, run_protocol


@dataclass
class ScaleConfig:
    singers: int = 1019
    dim: int = 2048
    train_tracks: int = 3
    segments: int = 20
    runs: int = 10
    seed: int = 0
    spread: float = 0.5  # cluster centres ~ N(0, spread^2) per dimension, segments ~ centre + N(0, 1)


def scale_data(cfg: ScaleConfig) -> ProtocolData:
    """Gaussian-cluster embeddings of the configured shape, float32, from ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    centres = rng.standard_normal((cfg.singers, cfg.dim), dtype=np.float32) * cfg.spread

    def track(i: int, tid: str) -> TrackEmbeddings:
        seg = rng.standard_normal((cfg.segments, cfg.dim), dtype=np.float32)
        seg += centres[i]
        return TrackEmbeddings(tid, (i,), seg)

    return ProtocolData(
        singers=[f"singer{i:04d}" for i in range(cfg.singers)],
        train=[track(i, f"s{i}-train{j}") for i in range(cfg.singers) for j in range(cfg.train_tracks)],
        val=[track(i, f"s{i}-val") for i in range(cfg.singers)],
        eval_sets={"test": [track(i, f"s{i}-test") for i in range(cfg.singers)]},
    )


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a plain ``torch.mm`` (n × n by n × n, float32), best of ``repeats``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def head_flops(preset: Preset, dim: int, classes: int) -> tuple[float, float]:
    """(FLOPs of one training step, FLOPs of one validation pass) of one head."""
    widths = [dim] + [preset.hidden_dim] * preset.hidden_layers + [classes]
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return step_flops(preset, dim, classes), float(2 * preset.val_segments_per_singer * classes * macs)


def measure(data: ProtocolData, preset: Preset, runs: int, group_size: int | None, seed: int) -> dict:
    """One protocol call: seconds, epochs per run, head steps per second and achieved FLOP/s."""
    outcome = run_protocol(data, preset, runs=runs, seed=seed, group_size=group_size, progress=False)
    epochs = [r.epochs for r in outcome.results]
    step_f, val_f = head_flops(preset, data.dim, len(data.singers))
    steps = sum(epochs) * preset.steps_per_epoch
    eval_rows = sum(t.segments.shape[0] for ts in data.eval_sets.values() for t in ts)
    eval_f = val_f / (preset.val_segments_per_singer * len(data.singers)) * eval_rows  # forward per row
    flops = steps * step_f + sum(epochs) * val_f + runs * eval_f
    return {
        "run_epoch_flops": preset.steps_per_epoch * step_f + val_f,  # one run's training steps and validation
        "seconds": outcome.seconds,
        "epochs": epochs,
        "steps_per_s": steps / outcome.seconds,
        "flops_per_s": flops / outcome.seconds,
        "top1": [r.evals["test"].top1 for r in outcome.results],
        "max_epochs_bound": outcome.any_max_epochs_bound,
    }


def _load() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def main(cfg: ScaleConfig, preset_name: str = "paper", probe_epochs: int = 3, full: bool = True,
         full_runs: int | None = None) -> None:
    """Print the one-run-at-a-time and the grouped path side by side (capped epochs), then the whole protocol
    (``full_runs`` runs, by default all) and what ``cfg.runs`` runs take at its epoch counts: projected from the
    grouped speed, and at the measured matmul peak (a floor no implementation in float32 on this machine
    beats)."""
    preset = get_preset(preset_name)
    t0 = time.perf_counter()
    data = scale_data(cfg)
    print(f"scale: {cfg.singers} singers, D={cfg.dim}, {cfg.train_tracks} training tracks x {cfg.segments} "
          f"segments per singer, preset {preset.name}, {torch.get_num_threads()} torch threads, "
          f"load average {_load()} (data drawn in {time.perf_counter() - t0:.1f} s)")
    peak = matmul_peak()
    print(f"peak:     torch.mm 2048x2048 {peak / 1e9:.1f} GFLOP/s")

    capped = replace(preset, max_epochs=probe_epochs)
    alone = measure(data, capped, runs=1, group_size=1, seed=cfg.seed)
    group = measure(data, capped, runs=cfg.runs, group_size=None, seed=cfg.seed)
    for label, m, n in (("alone", alone, 1), ("together", group, cfg.runs)):
        print(f"{label + ':':9} {n} run(s) x {probe_epochs} epochs {m['seconds']:.1f} s, "
              f"{m['seconds'] / n / probe_epochs:.2f} s per run-epoch, {m['steps_per_s']:.1f} head steps/s, "
              f"{m['flops_per_s'] / peak:.0%} of peak")
    print(f"ratio:    the {cfg.runs} runs together train {group['steps_per_s'] / alone['steps_per_s']:.2f}x "
          f"the head steps per second of one run alone")
    epoch_f = group["run_epoch_flops"]
    print(f"estimate: at this speed the {cfg.runs} runs take {cfg.runs * 100 * epoch_f / group['flops_per_s'] / 60:.0f}"
          f" min per 100 epochs per run, evaluation aside (the paper preset's epoch count depends on the data; "
          f"the full run below measures it)")
    if not full:
        return
    n_full = cfg.runs if full_runs is None else max(1, min(int(full_runs), cfg.runs))
    whole = measure(data, preset, runs=n_full, group_size=None, seed=cfg.seed)
    ep = whole["epochs"]
    print(f"protocol: {n_full} run(s) in {whole['seconds']:.0f} s ({whole['seconds'] / 60:.1f} min, "
          f"{whole['seconds'] / n_full:.1f} s per run), epochs {min(ep)}-{max(ep)} (mean {np.mean(ep):.0f}), "
          f"{whole['steps_per_s']:.1f} head steps/s, {whole['flops_per_s'] / peak:.0%} of peak, "
          f"test top-1 {np.mean(whole['top1']):.1%}, max_epochs bound: {whole['max_epochs_bound']}, "
          f"load average {_load()}")
    flops = whole["flops_per_s"] * whole["seconds"] / n_full * cfg.runs  # the runs' work at the measured epochs
    projected = flops / group["flops_per_s"] if n_full < cfg.runs else whole["seconds"]
    how = "projected at the grouped FLOP rate above" if n_full < cfg.runs else "measured"
    print(f"{cfg.runs} runs:  {how} {projected / 60:.1f} min; at 100 % of the measured peak the same work takes "
          f"{flops / peak / 60:.1f} min")
