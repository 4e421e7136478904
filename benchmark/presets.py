"""Protocol presets: every hyperparameter of the classifier-head protocol, named and versioned.

A preset is a frozen dataclass; the registry :data:`PRESETS` maps its name to it. ``paper`` follows every
rule of the reference implementation of Desblancs et al. (ISMIR 2024, ``deezer/real-cloned-singer-id``,
``evaluation/train.py``, ``evaluation/model.py``, ``evaluation/parameters.py``), its vote ranking included;
the one addition is the ``max_epochs`` safety cap (results record whether it bound). Every other preset is an
explicit, named deviation listed in ``deviations``. Changing any rule of a preset means a new ``version``
(results record it). The table of presets and of the reference's constants is in ``docs/protocol.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from singerbench.errors import UserError

VOTE_RULES = ("topk", "mean-softmax")
"""How a track's vote histogram is ranked (protocol.VOTERS implements each): ``topk`` is the reference's
``torch.argmax`` / ``torch.topk`` of the histogram on the protocol's device; ``mean-softmax`` breaks ties by the
mean softmax probability over the track's segments, then by class index."""

OPTIMIZERS = ("adam",)
"""Optimisers the protocol knows (the paper uses Adam; a new one is added with its own code path in protocol.py)."""


@dataclass(frozen=True)
class Preset:
    """Every hyperparameter of one protocol variant. Defaults are the paper's values."""

    name: str
    version: str
    description: str
    #: False for presets that are not comparable to the paper (e.g. ``quick``): the leaderboard says so.
    leaderboard: bool = True
    # --- head: Linear(D,h)-BN-ReLU-[Linear(h,h)-BN-ReLU]*(layers-1)-Linear(h,C) ---
    hidden_dim: int = 1024
    hidden_layers: int = 2
    batch_norm: bool = True
    #: L2-normalise the logits before the softmax/cross-entropy (the paper's ``F.normalize(x, dim=1)``).
    logit_norm: bool = True
    # --- optimiser (torch.optim.Adam, as in the paper) ---
    optimizer: str = "adam"
    lr: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-9
    weight_decay: float = 0.0
    # --- training batches: class-balanced (singer, then track, then segment), drawn with replacement ---
    batch_size: int = 100
    steps_per_epoch: int = 32
    # --- validation: segments drawn once per run from each singer's validation track ---
    val_segments_per_singer: int = 4
    #: validation loss = mean over batches of this size of the batch-mean loss (the paper's DataLoader).
    val_batch_size: int = 100
    # --- ReduceLROnPlateau on the validation loss (mode "min", relative threshold) ---
    scheduler_factor: float = 0.1
    scheduler_patience: int = 10
    scheduler_threshold: float = 1e-4
    scheduler_min_lr: float = 1e-5
    scheduler_eps: float = 1e-9
    # --- stopping ---
    #: stop after this many epochs in a row without a strictly lower validation loss; restore the best head.
    early_stop_patience: int = 20
    #: safety cap on epochs; not in the paper. Large enough never to bind in practice; results record if it did.
    max_epochs: int = 1000
    # --- evaluation ---
    top_k: int = 5
    #: how the vote histogram is ranked, one of VOTE_RULES (``topk`` = the reference's torch.argmax/topk).
    vote_rule: str = "topk"
    # --- class-count sweep of the paper: range(start, stop + 1, step), capped by the dataset's singers ---
    sweep_start: int = 100
    sweep_stop: int = 1000
    sweep_step: int = 100
    #: the steps of a dataset smaller than ``sweep_start`` (not in the paper, whose datasets have 100+ singers);
    #: all its singers are always the last step.
    small_sweep: tuple[int, ...] = (10, 25, 50)
    #: how this preset departs from the paper's code, one line each (empty for ``paper``).
    deviations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"preset {self.name!r}: optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.vote_rule not in VOTE_RULES:
            raise UserError(f"preset {self.name!r}: vote_rule {self.vote_rule!r} is not one of {VOTE_RULES}")
        for field in ("hidden_dim", "hidden_layers", "batch_size", "steps_per_epoch", "val_segments_per_singer",
                      "val_batch_size", "early_stop_patience", "max_epochs", "top_k"):
            if getattr(self, field) < 1:
                raise UserError(f"preset {self.name!r}: {field} must be at least 1")

    def params(self) -> dict:
        """All hyperparameters as a JSON-ready dict (tuples become lists), for results files."""
        d = asdict(self)
        for k in ("name", "version", "description"):
            d.pop(k)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def sweep_counts(self, n_singers: int) -> list[int]:
        """The paper's class-count sweep for a dataset with ``n_singers`` singers.

        Steps above ``n_singers`` are dropped. A dataset no larger than the first step gets the ``small_sweep``
        steps below its size, then all its singers. Steps below the number of cloned target singers stay: they
        score the real test tracks only (see ``protocol.run_protocol``).
        """
        counts = [c for c in range(self.sweep_start, self.sweep_stop + 1, self.sweep_step) if c <= n_singers]
        if n_singers <= self.sweep_start:
            counts = [c for c in self.small_sweep if 2 <= c < n_singers] + [n_singers]
        return counts or [n_singers]


PAPER = Preset(
    name="paper",
    version="2",
    description="Every rule of the paper's reference implementation (Desblancs et al., ISMIR 2024), its vote "
    "ranking included; plus a max_epochs safety cap.",
)

PAPER_MEANSOFTMAX = replace(
    PAPER,
    name="paper-meansoftmax",
    version="1",
    description="As `paper`, but vote ties are broken by the mean softmax probability, then class index "
    "(singerbench's `paper` v1 rule).",
    vote_rule="mean-softmax",
    deviations=(
        "vote ties (classes with equal votes, including those with none) are ranked by mean softmax probability, "
        "then class index (reference: the order torch.argmax/torch.topk return)",
    ),
)

PAPER_NOLOGITNORM = replace(
    PAPER,
    name="paper-nologitnorm",
    version="2",
    description="As `paper`, but plain logits go into the cross-entropy (no L2 normalisation).",
    logit_norm=False,
    deviations=("logits are not L2-normalised before the cross-entropy",),
)

QUICK = replace(
    PAPER,
    name="quick",
    version="2",
    description="Fast smoke-test variant for tests and `validate`; NOT for leaderboards.",
    leaderboard=False,
    steps_per_epoch=8,
    scheduler_patience=3,
    early_stop_patience=5,
    max_epochs=200,
    deviations=(
        "an epoch is 8 batches (paper: 32)",
        "ReduceLROnPlateau patience 3 (paper: 10)",
        "early stop after 5 epochs without improvement (paper: 20)",
        "max_epochs 200 (paper preset: 1000)",
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (PAPER, PAPER_MEANSOFTMAX, PAPER_NOLOGITNORM, QUICK)}
"""The registry: name -> preset."""

LEGACY_DEVIATIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("paper", "1"): PAPER_MEANSOFTMAX.deviations,
    ("paper-nologitnorm", "1"): PAPER_MEANSOFTMAX.deviations + PAPER_NOLOGITNORM.deviations,
    ("quick", "1"): PAPER_MEANSOFTMAX.deviations + QUICK.deviations,
}
"""Deviations of preset versions no longer registered, for result files written before they recorded them
(the v1 presets ranked vote ties by mean softmax probability)."""


def deviations_of(name: str, version: str) -> tuple[str, ...] | None:
    """How preset ``name`` at ``version`` departs from the reference; None when singerbench does not know it."""
    p = PRESETS.get(name)
    if p is not None and p.version == version:
        return p.deviations
    return LEGACY_DEVIATIONS.get((name, version))


def get_preset(name: str) -> Preset:
    """The registered preset called ``name``; a clear UserError listing the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None
