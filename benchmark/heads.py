"""Batched head training: the runs of one class count trained together as one stacked model.

Every run keeps what the protocol gives it alone (its initial weights, sampler, validation draw, Adam state,
learning rate, plateau counter, early stopping and best weights); the runs only share the matrix products:
the weights of R heads are stacked along a leading axis and every layer is one ``torch.baddbmm`` over the
runs. Each run's slice of a batched product is computed as if alone (a test checks this bit for bit), so a
run's numbers do not depend on which other runs it was trained with. A run that stops early leaves the stack
and the others go on without it. The optimiser (:class:`StackedAdam`) and the schedule
(:class:`PlateauSchedule`) are written out here because they must be per run; both follow torch's
``Adam`` and ``ReduceLROnPlateau`` step for step (tests compare them with torch's own).

The head is the paper's: ``Linear-BN-ReLU`` × layers, then ``Linear`` and optionally L2-normalised logits.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from singerbench.errors import UserError
from singerbench.presets import Preset

BN_EPS = 1e-5  # torch.nn.BatchNorm1d defaults, as in the paper's head
BN_MOMENTUM = 0.1
EVAL_CHUNK = 2048  # rows per stacked forward pass at evaluation (memory only; eval-mode BN is per row)
#: below this many FLOPs per training step of one head, torch runs on one thread: tiny products gain nothing
#: from intra-op threads and lose a lot waiting on them on a loaded machine (4.5x measured on the test heads).
#: Decided per head shape, never by the number of runs grouped, so grouping does not change a run's numbers.
SINGLE_THREAD_BELOW_FLOPS = 5e7
#: elements per slice of the Adam update (float32: 2 MiB per state tensor, so a slice's four tensors and the
#: denominator stay in L3 cache; the Adam step 2.4-4x faster than on whole tensors for the FMA-sized heads,
#: 256 Ki to 2 Mi elements all within noise of each other); memory traffic only, never the numbers.
ADAM_CHUNK = 1 << 19


class Sampler(Protocol):
    """What the trainer needs from a run's batch sampler (``protocol.BalancedSampler`` is one)."""

    def draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class HeadPlan:
    """Everything one run brings to the group: initial weights, its batches and its validation draw."""

    init_state: dict[str, torch.Tensor]  # state_dict of a freshly built ``protocol.Head``
    sampler: Sampler
    val_rows: np.ndarray  # rows of the validation matrix, in the paper's repetition-major order
    val_labels: np.ndarray  # local class index of each validation row


@dataclass
class HeadCourse:
    """How one run's training went (the protocol's RunOutcome fields)."""

    epochs: int
    best_epoch: int
    best_val_loss: float
    final_lr: float
    max_epochs_bound: bool


# --------------------------------------------------------------------------------------------------------------
# per-run optimiser and schedule


class StackedAdam:
    """``torch.optim.Adam`` (no amsgrad, not maximize) on stacked parameters with one learning rate per run.

    Adam is elementwise, so stacking R runs' tensors and giving each run its own lr is exactly R Adams that
    happen to share a step count (all runs of a group start together and step together).
    """

    def __init__(self, params: Sequence[torch.Tensor], lr: float, betas: tuple[float, float], eps: float,
                 weight_decay: float, runs: int, chunk: int = ADAM_CHUNK) -> None:
        self.params = list(params)
        self.lr = torch.full((runs,), float(lr), dtype=torch.float64)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        first = self.params[0]
        largest = max(q.numel() for q in self.params)
        # on an accelerator one kernel per tensor is cheaper than many small ones (no cache to stay in)
        self.chunk = min(int(chunk), largest) if first.device.type == "cpu" else largest
        self._denom = torch.empty(self.chunk, dtype=first.dtype, device=first.device)

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of every run, with torch's formulas and operation order (so, torch's numbers).

        The update is elementwise, so it is applied ``ADAM_CHUNK`` elements at a time (all runs at once while
        they share a learning rate, else run by run): the seven passes of torch's formulas then run on slices
        that stay in cache instead of streaming every state tensor through memory seven times (the step of 10
        FMA-sized heads: 0.48 s whole, 0.12 s sliced; the whole protocol gains much less, 1.0-1.13x, see
        docs/scale.md). Each element sees the same operations as in torch's ``Adam``, so the bits are equal.
        """
        self.step_count += 1
        bc1 = 1 - self.beta1**self.step_count
        bc2_sqrt = math.sqrt(1 - self.beta2**self.step_count)
        step_sizes = [float(lr) / bc1 for lr in self.lr.tolist()]
        shared = len(set(step_sizes)) == 1
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            g = p.grad.contiguous()
            for k, size in ([(slice(None), step_sizes[0])] if shared else enumerate(step_sizes)):
                pk, gk, mk, vk = p[k].view(-1), g[k].view(-1), m[k].view(-1), v[k].view(-1)
                for i in range(0, pk.numel(), self.chunk):
                    j = min(i + self.chunk, pk.numel())
                    self._update(pk[i:j], gk[i:j], mk[i:j], vk[i:j], size, bc2_sqrt)
            p.grad = None

    def _update(self, p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, step_size: float,
                bc2_sqrt: float) -> None:
        """torch's single-tensor Adam update on one slice (in place), its denominator in a reused buffer."""
        if self.weight_decay:
            g = g.add(p, alpha=self.weight_decay)
        m.lerp_(g, 1 - self.beta1)
        v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        denom = self._denom[: p.numel()]
        torch.sqrt(v, out=denom)
        denom.div_(bc2_sqrt).add_(self.eps)
        p.addcdiv_(m, denom, value=-step_size)

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the runs at ``index`` (the parameters are re-stacked by the caller)."""
        self.lr = self.lr[index.cpu()]
        self.exp_avg = [m[index] for m in self.exp_avg]
        self.exp_avg_sq = [v[index] for v in self.exp_avg_sq]


class PlateauSchedule:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode ``min``, relative threshold, no cooldown), one per run.

    ``step(i, loss, lr) -> lr``: after the epoch's validation loss, the run's new learning rate.
    """

    def __init__(self, runs: int, factor: float, patience: int, threshold: float, min_lr: float, eps: float) -> None:
        self.factor, self.patience, self.threshold = float(factor), int(patience), float(threshold)
        self.min_lr, self.eps = float(min_lr), float(eps)
        self.best = [math.inf] * runs
        self.bad = [0] * runs

    def step(self, i: int, loss: float, lr: float) -> float:
        if loss < self.best[i] * (1.0 - self.threshold):
            self.best[i], self.bad[i] = loss, 0
        else:
            self.bad[i] += 1
        if self.bad[i] > self.patience:
            self.bad[i] = 0
            new = max(lr * self.factor, self.min_lr)
            if lr - new > self.eps:
                return new
        return lr


# --------------------------------------------------------------------------------------------------------------
# the stacked model


class StackedHeads:
    """R heads of one shape as stacked tensors: ``W[l]`` (R, in, out), ``b[l]`` (R, 1, out), BN per run."""

    def __init__(self, states: Sequence[dict[str, torch.Tensor]], preset: Preset, device: torch.device) -> None:
        self.layers = preset.hidden_layers
        self.batch_norm = preset.batch_norm
        self.logit_norm = preset.logit_norm
        step = 3 if preset.batch_norm else 2  # Sequential: Linear, [BN], ReLU per hidden layer
        linear = [step * i for i in range(self.layers)] + [step * self.layers]

        def stack(name: str, transpose: bool = False) -> torch.Tensor:
            ts = [s[name].t() if transpose else s[name] for s in states]
            return torch.stack(ts).to(device=device, dtype=torch.float32).contiguous()

        self.weights = [stack(f"model.{j}.weight", transpose=True).requires_grad_() for j in linear]
        self.biases = [stack(f"model.{j}.bias").unsqueeze(1).requires_grad_() for j in linear]
        self.gammas, self.betas, self.running_mean, self.running_var = [], [], [], []
        if self.batch_norm:
            for i in range(self.layers):
                j = step * i + 1
                self.gammas.append(stack(f"model.{j}.weight").unsqueeze(1).requires_grad_())
                self.betas.append(stack(f"model.{j}.bias").unsqueeze(1).requires_grad_())
                self.running_mean.append(stack(f"model.{j}.running_mean").unsqueeze(1))
                self.running_var.append(stack(f"model.{j}.running_var").unsqueeze(1))

    @property
    def runs(self) -> int:
        return int(self.weights[0].shape[0])

    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases, *self.gammas, *self.betas]

    def buffers(self) -> list[torch.Tensor]:
        return [*self.running_mean, *self.running_var]

    def forward(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """``x`` (R, B, D) -> logits (R, B, C), L2-normalised when the preset says so."""
        h = x
        for i in range(self.layers):
            h = torch.baddbmm(self.biases[i], h, self.weights[i])
            if self.batch_norm:  # BatchNorm1d per run: the runs' features side by side, (B, R*H)
                r, b, w = h.shape
                flat = h.transpose(0, 1).reshape(b, r * w)
                flat = F.batch_norm(flat, self.running_mean[i].view(-1), self.running_var[i].view(-1),
                                    self.gammas[i].view(-1), self.betas[i].view(-1), training=train,
                                    momentum=BN_MOMENTUM, eps=BN_EPS)
                h = flat.view(b, r, w).transpose(0, 1)
            h = torch.relu(h)
        out = torch.baddbmm(self.biases[-1], h, self.weights[-1])
        return F.normalize(out, dim=2) if self.logit_norm else out

    def tensors(self) -> list[torch.Tensor]:
        return [*self.parameters(), *self.buffers()]

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the runs at ``index`` (stopped runs leave the stack)."""
        def sel(ts: list[torch.Tensor], grad: bool) -> list[torch.Tensor]:
            return [t.detach()[index].contiguous().requires_grad_(grad) for t in ts]

        self.weights, self.biases = sel(self.weights, True), sel(self.biases, True)
        self.gammas, self.betas = sel(self.gammas, True), sel(self.betas, True)
        self.running_mean, self.running_var = sel(self.running_mean, False), sel(self.running_var, False)

    @torch.no_grad()
    def load_runs(self, tensors: Sequence[torch.Tensor]) -> None:
        """Replace every tensor (parameters then buffers, as :meth:`tensors` orders them)."""
        for dst, src in zip(self.tensors(), tensors, strict=True):
            dst.copy_(src)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities of every run on the rows ``x`` (N, D): (R, N, C) float32 on the heads' device,
        one pass for all runs, computed as the reference does (``exp(log_softmax)``) so votes are ranked on it."""
        parts = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], EVAL_CHUNK):
                chunk = x[i : i + EVAL_CHUNK].unsqueeze(0).expand(self.runs, -1, -1)
                parts.append(torch.exp(torch.log_softmax(self.forward(chunk, train=False), dim=2)))
        return torch.cat(parts, dim=1)


def step_flops(preset: Preset, dim: int, classes: int) -> float:
    """FLOPs of one training step of one head: forward, weight gradients, input gradients past the first layer."""
    widths = [dim] + [preset.hidden_dim] * preset.hidden_layers + [classes]
    macs = [a * b for a, b in zip(widths[:-1], widths[1:], strict=True)]
    return float(2 * preset.batch_size * (2 * sum(macs) + sum(macs[1:])))


@contextlib.contextmanager
def threads_for(preset: Preset, dim: int, classes: int) -> Iterator[None]:
    """One torch thread for heads too small to gain from more (see SINGLE_THREAD_BELOW_FLOPS), then restore."""
    was = torch.get_num_threads()
    if step_flops(preset, dim, classes) < SINGLE_THREAD_BELOW_FLOPS and was > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(was)


def _per_row_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every row: (R, B, C), (R, B) -> (R, B)."""
    return -torch.log_softmax(logits, dim=2).gather(2, labels.unsqueeze(2)).squeeze(2)


# --------------------------------------------------------------------------------------------------------------
# training


def train_group(
    plans: Sequence[HeadPlan],
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    preset: Preset,
    on_epoch: Callable[[int, int, float, float], None] | None = None,
) -> tuple[StackedHeads, list[HeadCourse]]:
    """Train the heads of ``plans`` together; return them (best weights restored, eval mode) and their courses.

    ``on_epoch(run, epoch, val_loss, best_loss)`` is called after each run's epoch (progress display).
    """
    dev = x_train.device
    runs = len(plans)
    heads = StackedHeads([p.init_state for p in plans], preset, dev)
    opt = StackedAdam(heads.parameters(), preset.lr, preset.adam_betas, preset.adam_eps, preset.weight_decay, runs)
    sched = PlateauSchedule(runs, preset.scheduler_factor, preset.scheduler_patience, preset.scheduler_threshold,
                            preset.scheduler_min_lr, preset.scheduler_eps)
    val_x = torch.stack([x_val[torch.from_numpy(p.val_rows).to(dev)] for p in plans])  # (R, V, D)
    val_y = torch.stack([torch.from_numpy(np.asarray(p.val_labels, dtype=np.int64)) for p in plans]).to(dev)

    best_loss = [math.inf] * runs
    best_epoch = [-1] * runs
    plateau = [0] * runs
    epochs = [0] * runs
    final_lr = [preset.lr] * runs
    best: list[list[torch.Tensor] | None] = [None] * runs
    active = list(range(runs))  # the runs still in the stack, in stack order
    epoch = 0
    bsz = preset.batch_size
    while active:
        for _ in range(preset.steps_per_epoch):
            draws = [plans[r].sampler.draw(bsz) for r in active]
            rows = torch.from_numpy(np.concatenate([d[0] for d in draws])).to(dev)
            labels = torch.from_numpy(np.stack([d[1] for d in draws]).astype(np.int64)).to(dev)
            xb = x_train[rows].view(len(active), bsz, -1)
            loss = _per_row_loss(heads.forward(xb, train=True), labels).mean(dim=1).sum()
            loss.backward()
            opt.step()
        val = _val_losses(heads, val_x, val_y, preset.val_batch_size)
        epoch += 1
        leaving = []
        for k, r in enumerate(active):
            v = float(val[k])
            if v < best_loss[r]:  # strict improvement, as the paper's save_epoch
                best_loss[r], best_epoch[r], plateau[r] = v, epoch - 1, 0
                best[r] = [t.detach()[k].clone() for t in heads.tensors()]
            else:
                plateau[r] += 1
            lr = float(opt.lr[k])
            new_lr = sched.step(r, v, lr)
            opt.lr[k] = new_lr
            final_lr[r] = new_lr
            epochs[r] = epoch
            if on_epoch is not None:
                on_epoch(r, epoch, v, best_loss[r])
            if plateau[r] >= preset.early_stop_patience or epoch >= preset.max_epochs:
                leaving.append(k)
        if leaving:
            keep = [k for k in range(len(active)) if k not in leaving]
            active = [active[k] for k in keep]
            if active:
                index = torch.tensor(keep, dtype=torch.long, device=dev)
                heads.keep(index)
                opt.keep(index)
                opt.params = heads.parameters()
                val_x, val_y = val_x[index], val_y[index]

    for r in range(runs):
        if best[r] is None:
            raise UserError("validation loss was never finite: the embeddings may be degenerate (all equal?)")
    trained = StackedHeads([p.init_state for p in plans], preset, dev)
    trained.load_runs([torch.stack([best[r][j] for r in range(runs)]) for j in range(len(best[0]))])
    courses = [
        HeadCourse(epochs=epochs[r], best_epoch=best_epoch[r], best_val_loss=float(best_loss[r]),
                   final_lr=float(final_lr[r]), max_epochs_bound=plateau[r] < preset.early_stop_patience)
        for r in range(runs)
    ]
    return trained, courses


@torch.no_grad()
def _val_losses(heads: StackedHeads, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> np.ndarray:
    """Per run: the mean over consecutive batches of the batch-mean cross-entropy (the paper's validation loop)."""
    rows = _per_row_loss(heads.forward(x, train=False), y)  # (R, V)
    means = [rows[:, i : i + batch_size].mean(dim=1) for i in range(0, rows.shape[1], batch_size)]
    return torch.stack(means, dim=1).double().cpu().numpy().mean(axis=1)
