"""The Protocol: train small classifier heads on frozen segment embeddings, vote per track, score.

One call of :func:`run_protocol` trains one head per (class count, run) as the preset says (the ``paper``
preset follows the reference code of Desblancs et al., ISMIR 2024), evaluates every eval set by majority vote
over a track's vocal segments and returns per-run scores and per-track predictions. The pure pieces
(:data:`VOTERS`, :func:`reference_vote`, :func:`vote`, :func:`is_correct`, :func:`top_k`,
:class:`BalancedSampler`, :func:`build_head`) are separate so that they can be checked on hand-made numbers.
Rules (the vote ranking and its ties, seeds, the sweep) are in docs/protocol.md.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from singerbench.errors import UserError
from singerbench.heads import HeadPlan, threads_for, train_group
from singerbench.presets import Preset
from singerbench.progress import Progress

TEST_SET = "test"
"""The eval set holding the real test tracks, one per singer: at a reduced class count only the test tracks of
included singers are evaluated. The targets of every *other* eval set (e.g. ``cloned``) are always classes; at a
class count below their number (a *real-only* step) those sets are not scored and the classes are a uniform
sample of all singers."""



# --------------------------------------------------------------------------------------------------------------
# input data


@dataclass
class TrackEmbeddings:
    """The segment embeddings of one track and whom it should be attributed to."""

    track_id: str
    targets: tuple[int, ...]  # class indices into ProtocolData.singers (one for a real track, 1+ for a cloned)
    segments: np.ndarray  # (n_segments, D) float32, one row per vocal segment


@dataclass
class ProtocolData:
    """Everything the protocol needs from a dataset, already embedded."""

    singers: list[str]  # class order
    train: list[TrackEmbeddings]  # each singer has >= 1 training track
    val: list[TrackEmbeddings]  # one validation track per singer
    eval_sets: dict[str, list[TrackEmbeddings]]  # e.g. {"test": [...], "cloned": [...]}

    @property
    def dim(self) -> int:
        return int(self.train[0].segments.shape[1]) if self.train else 0


def validate_data(data: ProtocolData) -> int:
    """Check the inputs and return the embedding size D; a UserError naming the first bad track otherwise."""
    n = len(data.singers)
    if n < 2:
        raise UserError(f"the protocol needs at least 2 singers, got {n}")
    if len(set(data.singers)) != n:
        raise UserError("the singer list has duplicates")
    dim: int | None = None

    def check(t: TrackEmbeddings, where: str) -> None:
        nonlocal dim
        label = f"{where} track {t.track_id!r}"
        seg = t.segments
        if not isinstance(seg, np.ndarray) or seg.ndim != 2:
            raise UserError(f"{label}: segments must be a 2-D array (n_segments, D), got {getattr(seg, 'shape', seg)}")
        if seg.shape[0] == 0:
            raise UserError(f"{label} has no vocal segments (empty segment array)")
        if dim is None:
            dim = int(seg.shape[1])
        elif seg.shape[1] != dim:
            raise UserError(f"{label}: embedding size {seg.shape[1]} differs from the other tracks' {dim}")
        if not np.all(np.isfinite(seg)):
            raise UserError(f"{label}: embeddings contain NaN or infinite values")
        if not t.targets:
            raise UserError(f"{label} names no target singer")
        bad = [c for c in t.targets if not 0 <= int(c) < n]
        if bad:
            raise UserError(f"{label}: target class {bad[0]} is outside 0..{n - 1}")

    train_count = [0] * n
    val_count = [0] * n
    for t in data.train:
        check(t, "train")
        if len(t.targets) != 1:
            raise UserError(f"train track {t.track_id!r} has {len(t.targets)} targets; training tracks need one")
        train_count[t.targets[0]] += 1
    for t in data.val:
        check(t, "val")
        if len(t.targets) != 1:
            raise UserError(f"val track {t.track_id!r} has {len(t.targets)} targets; validation tracks need one")
        val_count[t.targets[0]] += 1
    for name, tracks in data.eval_sets.items():
        for t in tracks:
            check(t, f"{name}")
    for i, s in enumerate(data.singers):
        if train_count[i] == 0:
            raise UserError(f"singer {s!r} has no training track")
        if val_count[i] != 1:
            raise UserError(f"singer {s!r} has {val_count[i]} validation tracks; the protocol needs exactly one")
    assert dim is not None
    return dim


# --------------------------------------------------------------------------------------------------------------
# pure pieces


@dataclass(frozen=True)
class Ranking:
    """A track's vote: segments per class, the predicted class and the first ``k`` classes."""

    hist: np.ndarray  # (n_classes,) int: how many segments voted for each class
    top1: int
    topk: np.ndarray  # the first min(k, n_classes) classes, best first


def _histogram(segment_probs: torch.Tensor) -> np.ndarray:
    """Exact vote counts per class (each segment votes for its argmax; an in-segment tie to the lower index)."""
    return np.bincount(segment_probs.argmax(dim=1).cpu().numpy(), minlength=segment_probs.shape[1])


def reference_vote(segment_probs: torch.Tensor, k: int) -> Ranking:
    """The reference's vote, computed as its ``evaluation/train.py`` does, on the tensor's own device.

    Each segment's argmax becomes a float one-hot row; the rows are summed into a ``(1, C)`` histogram and
    divided by its sum; the prediction is ``torch.argmax`` of it, top-k ``torch.topk(hist, k)``. Ties are
    therefore ordered as those torch kernels order them on this device: ``argmax`` returns the first maximal
    index everywhere; ``topk`` leaves the order of equal values unspecified (on CPU, ``[0,0,3,0,0,1,0,0,0,0]``
    gives ``[2,5,8,7,9]``), deterministic for one device type, torch build and class count.
    """
    p = segment_probs
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"segment_probs must be (n_segments >= 1, n_classes), got {tuple(p.shape)}")
    n_classes = p.shape[1]
    onehot = F.one_hot(torch.argmax(p, dim=-1), num_classes=n_classes).float()
    hist = onehot.sum(dim=0).unsqueeze(0)
    hist /= hist.sum()
    top1 = int(torch.argmax(hist, dim=-1).item())
    _, idx = torch.topk(hist, min(k, n_classes))
    return Ranking(_histogram(p), top1, idx.squeeze(0).cpu().numpy())


def vote(segment_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean-softmax vote: ``(histogram, ranked classes)``, every class ranked.

    Each segment votes for its most probable class. Classes are ranked by votes, ties (including the classes
    with no vote) by the mean softmax probability over the track's segments, and only if those are exactly equal
    too, by class index. ``histogram[c]`` is the number of segments that voted for ``c``.
    """
    p = np.asarray(segment_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"segment_probs must be (n_segments >= 1, n_classes), got {p.shape}")
    n_classes = p.shape[1]
    hist = np.bincount(p.argmax(axis=1), minlength=n_classes)
    mean = p.mean(axis=0)
    ranked = np.lexsort((np.arange(n_classes), -mean, -hist))  # last key is the primary one
    return hist, ranked


def mean_softmax_vote(segment_probs: torch.Tensor, k: int) -> Ranking:
    """:func:`vote` as a :data:`VOTERS` entry (computed in float64 on the CPU)."""
    hist, ranked = vote(segment_probs.double().cpu().numpy())
    return Ranking(hist, int(ranked[0]), top_k(ranked, k))


VOTERS: dict[str, Callable[[torch.Tensor, int], Ranking]] = {
    "topk": reference_vote,
    "mean-softmax": mean_softmax_vote,
}
"""The registry of vote rules (``Preset.vote_rule`` names one): segment probabilities ``(n, C)`` and k -> Ranking."""


def top_k(ranked: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` classes of a ranking (all of them when there are fewer than ``k`` classes)."""
    return np.asarray(ranked)[: max(0, k)]


def is_correct(ranked: np.ndarray, targets: Sequence[int], k: int = 1) -> bool:
    """A track is right at ``k`` when any of its targets is among the top ``k``: a duet counts either singer."""
    return bool(set(int(c) for c in top_k(ranked, k)) & set(int(t) for t in targets))


class BalancedSampler:
    """Class-balanced batches as in the paper: a random class, then one of its tracks, then one of its segments.

    ``tracks_by_class[c]`` lists ``(start, length)`` row ranges, one per training track of class ``c``, in a flat
    segment matrix; :meth:`draw` returns row indices into it and the class labels. Every draw is uniform and with
    replacement. Per batch, the classes are drawn first (one vector), then the tracks, then the segments.
    """

    def __init__(self, tracks_by_class: Sequence[Sequence[tuple[int, int]]], rng: np.random.Generator) -> None:
        if not tracks_by_class or any(len(ts) == 0 for ts in tracks_by_class):
            raise ValueError("every class needs at least one track")
        starts, lengths, first, count = [], [], [], []
        for ts in tracks_by_class:
            first.append(len(starts))
            count.append(len(ts))
            for s, n in ts:
                if n < 1:
                    raise ValueError("every track needs at least one segment")
                starts.append(s)
                lengths.append(n)
        self._start = np.asarray(starts, dtype=np.int64)
        self._length = np.asarray(lengths, dtype=np.int64)
        self._first = np.asarray(first, dtype=np.int64)
        self._count = np.asarray(count, dtype=np.int64)
        self.n_classes = len(tracks_by_class)
        self.rng = rng

    def draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(row indices, class labels)`` of one batch."""
        cls = self.rng.integers(0, self.n_classes, size=batch_size)
        track = self._first[cls] + self.rng.integers(0, self._count[cls])
        rows = self._start[track] + self.rng.integers(0, self._length[track])
        return rows, cls


class Head(torch.nn.Module):
    """The classifier head: an MLP whose logits are optionally L2-normalised (the paper's ``Classifier``)."""

    def __init__(self, input_dim: int, num_classes: int, preset: Preset) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        width = input_dim
        for _ in range(preset.hidden_layers):
            layers.append(torch.nn.Linear(width, preset.hidden_dim))
            if preset.batch_norm:
                layers.append(torch.nn.BatchNorm1d(preset.hidden_dim))
            layers.append(torch.nn.ReLU())
            width = preset.hidden_dim
        layers.append(torch.nn.Linear(width, num_classes))
        self.model = torch.nn.Sequential(*layers)
        self.logit_norm = preset.logit_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.model(x)
        return F.normalize(x, dim=1) if self.logit_norm else x


def build_head(input_dim: int, num_classes: int, preset: Preset, seed: int) -> Head:
    """A freshly initialised head (PyTorch's default init), drawn from ``seed`` without touching global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Head(input_dim, num_classes, preset)


def summarize(values: Sequence[float]) -> dict:
    """``{mean, std, values}``; std is the sample std (ddof=1) for two or more values, else 0."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("nothing to summarize")
    std = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    return {"mean": float(np.mean(v)), "std": std, "values": v}


def run_seed(seed: int, run: int) -> int:
    """The seed of run ``run``: the first 32-bit word of ``numpy.random.SeedSequence([seed, run])``."""
    return int(np.random.SeedSequence([int(seed), int(run)]).generate_state(1)[0])


def run_streams(seed_of_run: int, class_count: int) -> dict[str, np.random.SeedSequence]:
    """The four independent random streams of one (run, class count): children of SeedSequence([run seed, C])."""
    names = ("classes", "init", "batches", "validation")
    children = np.random.SeedSequence([int(seed_of_run), int(class_count)]).spawn(len(names))
    return dict(zip(names, children, strict=True))


def select_classes(n_singers: int, required: Sequence[int], class_count: int, rng: np.random.Generator) -> np.ndarray:
    """The singers of one sweep step, sorted: all ``required`` ones plus a uniform sample of the others."""
    req = np.unique(np.asarray(list(required), dtype=np.int64))
    if class_count > n_singers:
        raise UserError(f"class count {class_count} exceeds the dataset's {n_singers} singers")
    if class_count < len(req):
        raise UserError(
            f"class count {class_count} is below the {len(req)} singers that cloned tracks name as targets"
        )
    if class_count < 2:
        raise UserError(f"class count {class_count}: the protocol needs at least 2 classes")
    if class_count == n_singers:
        return np.arange(n_singers)
    others = np.setdiff1d(np.arange(n_singers), req)
    pick = rng.choice(others, size=class_count - len(req), replace=False)
    return np.sort(np.concatenate([req, pick]))


# --------------------------------------------------------------------------------------------------------------
# outcome


@dataclass
class TrackPrediction:
    """What one head said about one eval track."""

    track_id: str
    targets: list[str]
    prediction: str
    votes: dict[str, int]  # singer -> segments that voted for it (singers with no vote left out)
    top5: list[str]  # the first ``preset.top_k`` singers of the ranking (named top5 after the paper's metric)
    top1_correct: bool
    top5_correct: bool


@dataclass
class EvalScores:
    """One eval set under one head: accuracies over its tracks and every track's prediction."""

    top1: float
    top5: float
    tracks: list[TrackPrediction]

    @property
    def n_tracks(self) -> int:
        return len(self.tracks)


@dataclass
class RunOutcome:
    """One trained head: its seed, its training course and its scores on each eval set."""

    class_count: int
    run: int
    seed: int
    classes: list[str]  # the singers of this head, in its class order
    epochs: int
    best_epoch: int  # 0-based epoch whose weights were restored
    best_val_loss: float
    final_lr: float
    max_epochs_bound: bool  # True when training stopped at preset.max_epochs, not by early stopping
    evals: dict[str, EvalScores]  # eval sets with at least one evaluable track


@dataclass
class ProtocolOutcome:
    """All heads of one :func:`run_protocol` call."""

    preset: Preset
    seed: int
    runs: int
    class_counts: list[int]
    device: str
    results: list[RunOutcome]
    seconds: float = field(default=0.0, compare=False)

    def aggregate(self) -> dict[int, dict[str, dict]]:
        """``{class_count: {eval_set: {"top1": summary, "top5": summary, "tracks": n}}}`` over the runs."""
        out: dict[int, dict[str, dict]] = {}
        for c in self.class_counts:
            per_set: dict[str, dict] = {}
            runs = [r for r in self.results if r.class_count == c]
            names = sorted({n for r in runs for n in r.evals}, key=_set_order)
            for name in names:
                scores = [r.evals[name] for r in runs if name in r.evals]
                per_set[name] = {
                    "top1": summarize([s.top1 for s in scores]),
                    "top5": summarize([s.top5 for s in scores]),
                    "tracks": scores[0].n_tracks,
                }
            out[c] = per_set
        return out

    @property
    def any_max_epochs_bound(self) -> bool:
        return any(r.max_epochs_bound for r in self.results)


def _set_order(name: str) -> tuple[int, str]:
    return ({"test": 0, "cloned": 1}.get(name, 2), name)


# --------------------------------------------------------------------------------------------------------------
# training and evaluation


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic torch kernels for the duration of the protocol, restoring the caller's setting afterwards."""
    was, was_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)


def _device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise UserError(f"device {device!r} is not a torch device: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {device!r} asked for, but MPS is not available; use --device cpu")
    return dev


def _stack(tracks: Sequence[TrackEmbeddings]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One float32 matrix of all segments and each track's (start, length) in it."""
    ranges, start = [], 0
    for t in tracks:
        n = int(t.segments.shape[0])
        ranges.append((start, n))
        start += n
    mats = [np.asarray(t.segments, dtype=np.float32) for t in tracks]
    return (np.concatenate(mats, axis=0) if mats else np.zeros((0, 0), np.float32)), ranges


def _plan_run(
    *,
    data: ProtocolData,
    preset: Preset,
    dim: int,
    train_ranges: list[tuple[int, int]],
    val_ranges: list[tuple[int, int]],
    val_track_of: list[int],
    classes: np.ndarray,
    streams: dict[str, np.random.SeedSequence],
) -> HeadPlan:
    """What one run brings to its group: the initial head, its sampler and its validation draw."""
    c = len(classes)
    local = {int(g): i for i, g in enumerate(classes)}
    by_class: list[list[tuple[int, int]]] = [[] for _ in range(c)]
    for t, r in zip(data.train, train_ranges, strict=True):
        if t.targets[0] in local:
            by_class[local[t.targets[0]]].append(r)
    sampler = BalancedSampler(by_class, np.random.default_rng(streams["batches"]))

    # validation: per singer, val_segments_per_singer segments of its validation track, drawn once per run with
    # replacement; ordered repetition-major (all singers, then all singers again ...) like the paper's ValDataset.
    vrng = np.random.default_rng(streams["validation"])
    reps = preset.val_segments_per_singer
    val_labels = np.tile(np.arange(c), reps)
    starts = np.array([val_ranges[val_track_of[int(g)]][0] for g in classes], dtype=np.int64)
    lengths = np.array([val_ranges[val_track_of[int(g)]][1] for g in classes], dtype=np.int64)
    val_rows = np.tile(starts, reps) + vrng.integers(0, np.tile(lengths, reps))

    init_seed = int(streams["init"].generate_state(1)[0])
    init_state = build_head(dim, c, preset, init_seed).state_dict()
    return HeadPlan(init_state=init_state, sampler=sampler, val_rows=val_rows, val_labels=val_labels)


def _evaluate(
    set_probs: np.ndarray,
    tracks: list[TrackEmbeddings],
    ranges: list[tuple[int, int]],
    classes: np.ndarray,
    singers: list[str],
    k: int,
    vote_rule: str = "topk",
) -> EvalScores | None:
    """Vote (by ``vote_rule``, see VOTERS) and score the tracks whose targets are all among ``classes``.

    ``set_probs`` (n_rows, n_classes) are one head's softmax probabilities on every row of the eval set, on the
    device the protocol runs on (the reference ranks votes there). None when no track's targets are all classes.
    """
    voter = VOTERS[vote_rule]
    local = {int(g): i for i, g in enumerate(classes)}
    keep = [i for i, t in enumerate(tracks) if all(int(g) in local for g in t.targets)]
    if not keep:
        return None
    name = [singers[int(g)] for g in classes]
    preds = []
    for i in keep:
        t, (start, n) = tracks[i], ranges[i]
        ranking = voter(set_probs[start : start + n], k)
        targets = {local[int(g)] for g in t.targets}
        preds.append(
            TrackPrediction(
                track_id=t.track_id,
                targets=[singers[int(g)] for g in t.targets],
                prediction=name[ranking.top1],
                votes={name[j]: int(ranking.hist[j]) for j in np.flatnonzero(ranking.hist)},
                top5=[name[int(j)] for j in ranking.topk],
                top1_correct=ranking.top1 in targets,
                top5_correct=bool(targets & {int(j) for j in ranking.topk}),
            )
        )
    return EvalScores(
        top1=float(np.mean([p.top1_correct for p in preds])),
        top5=float(np.mean([p.top5_correct for p in preds])),
        tracks=preds,
    )


def run_protocol(
    data: ProtocolData,
    preset: Preset,
    runs: int = 10,
    seed: int = 0,
    device: str = "cpu",
    class_counts: list[int] | None = None,
    progress: bool = True,
    group_size: int | None = None,
) -> ProtocolOutcome:
    """Train and evaluate ``runs`` heads per class count; see docs/protocol.md for every rule.

    ``class_counts`` defaults to one step with all singers. Per step, the singers named by any non-``test``
    eval set are always classes, the rest are sampled per run; ``test`` is scored on the included singers only.
    A step below the number of those singers is real-only: a uniform sample of all singers, ``test`` alone scored.
    The runs of a class count are trained together, ``group_size`` at a time (default: all); a run's numbers
    do not depend on the grouping (``group_size=1`` trains one run at a time).
    """
    if runs < 1:
        raise UserError(f"runs must be at least 1, got {runs}")
    dim = validate_data(data)
    n = len(data.singers)
    required = sorted({int(g) for name, ts in data.eval_sets.items() if name != TEST_SET for t in ts for g in t.targets})
    counts = [n] if not class_counts else [int(c) for c in class_counts]
    if len(set(counts)) != len(counts):
        raise UserError(f"class counts {counts} repeat a value")
    for c in counts:
        if c > n or c < 2:
            raise UserError(f"class count {c} is out of range: it must lie between 2 and {n} (all singers)")
    dev = _device(device)
    t0 = time.perf_counter()

    x_train_np, train_ranges = _stack(data.train)
    x_val_np, val_ranges = _stack(data.val)
    val_track_of = [0] * n
    for i, t in enumerate(data.val):
        val_track_of[t.targets[0]] = i
    x_train = torch.from_numpy(x_train_np).to(dev)
    x_val_all = torch.from_numpy(x_val_np).to(dev)
    eval_stacks = {}
    for name, tracks in data.eval_sets.items():
        if tracks:
            xs, rs = _stack(tracks)
            eval_stacks[name] = (torch.from_numpy(xs).to(dev), rs)
    assert x_train.shape[1] == dim

    group = runs if group_size is None else max(1, int(group_size))
    results: list[RunOutcome] = []
    # a bar on a terminal, else a log line per stage and at a bounded interval (runs, epochs: singerbench.progress)
    with _deterministic(dev), Progress("protocol", len(counts) * runs, "run", bar=progress) as bar:
        for c in counts:
            real_only = c < len(required)  # the cloned targets cannot all be classes: score real tracks only
            for first in range(0, runs, group):
                members = list(range(first, min(runs, first + group)))
                seeds = [run_seed(seed, r) for r in members]
                classes, plans = [], []
                for s in seeds:
                    streams = run_streams(s, c)
                    cls = select_classes(n, () if real_only else required, c,
                                         np.random.default_rng(streams["classes"]))
                    classes.append(cls)
                    plans.append(_plan_run(
                        data=data, preset=preset, dim=dim, train_ranges=train_ranges, val_ranges=val_ranges,
                        val_track_of=val_track_of, classes=cls, streams=streams,
                    ))

                def on_epoch(k: int, epoch: int, val: float, best: float, members: list[int] = members, c: int = c) -> None:
                    bar.set_postfix({"classes": c, "run": members[k], "epoch": epoch, "val_loss": f"{val:.4f}",
                                     "best": f"{best:.4f}"}, refresh=False)
                    bar.refresh()

                evals: list[dict[str, EvalScores]] = [{} for _ in members]
                with threads_for(preset, dim, c):
                    heads, courses = train_group(plans, x_train, x_val_all, preset, on_epoch=on_epoch)
                    for name, tracks in data.eval_sets.items():
                        if name not in eval_stacks or (real_only and name != TEST_SET):
                            continue
                        xs, rs = eval_stacks[name]
                        probs = heads.probabilities(xs)  # one pass over the set for every run of the group
                        for k in range(len(members)):
                            scored = _evaluate(probs[k], tracks, rs, classes[k], data.singers, preset.top_k,
                                                 preset.vote_rule)
                            if scored is not None:
                                evals[k][name] = scored
                        del probs
                for k, r in enumerate(members):
                    results.append(
                        RunOutcome(
                            class_count=c, run=r, seed=seeds[k], classes=[data.singers[int(g)] for g in classes[k]],
                            evals=evals[k], **asdict(courses[k]),
                        )
                    )
                bar.update(len(members))
    return ProtocolOutcome(
        preset=preset, seed=seed, runs=runs, class_counts=counts, device=str(dev), results=results,
        seconds=time.perf_counter() - t0,
    )
