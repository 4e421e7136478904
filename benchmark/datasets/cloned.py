"""Bring-your-own cloned set: cloned songs tested against heads trained on a closed reference set (the paper's §5).

``--dataset cloned --manifest CLONED --reference CLOSED``: the result is one Manifest holding the reference
set's train/val/test tracks plus the cloned rows (role ``cloned``; a row may name several target singers,
e.g. a duet). Every target must be a singer of the reference set; the protocol always includes the targets in
its class sweeps (``extra["cloned_targets"]``).
"""

from __future__ import annotations

from pathlib import Path

from singerbench.datasets import register_dataset
from singerbench.datasets.closed import check_closed, load_manifest_file
from singerbench.errors import UserError
from singerbench.manifest import Manifest

NEEDS = "your cloned songs (--manifest FILE) and the closed set they clone (--reference FILE), with audio"


def status(manifest: Path | str | None = None, reference: Path | str | None = None, **_: object) -> tuple[bool, str]:
    if manifest is None or reference is None:
        return False, "bring your own: needs --manifest FILE and --reference CLOSED_MANIFEST"
    for opt, p in (("--manifest", manifest), ("--reference", reference)):
        if not Path(p).expanduser().is_file():
            return False, f"{opt} {p} does not exist"
    return True, f"cloned {manifest} against {reference}"


@register_dataset("cloned", description="your own cloned songs vs a closed set", needs=NEEDS, status=status)
def load(
    manifest: Path | str | None = None,
    reference: Path | str | None = None,
    data_root: Path | str | None = None,
    reference_root: Path | str | None = None,
    offsets: str = "vad",
    lenient: bool = False,  # ``-D lenient=true`` arrives typed (datasets._typed)
) -> Manifest:
    """Reference tracks (train/val/test) plus the cloned rows; ``data_root`` resolves the cloned audio paths,
    ``reference_root`` the reference's."""
    if manifest is None or reference is None:
        raise UserError("dataset 'cloned' needs --manifest CLONED_FILE and --reference CLOSED_MANIFEST")
    ref = load_manifest_file(reference, "reference", reference_root, offsets, lenient=lenient)
    if ref.by_role("cloned"):
        raise UserError(f"--reference {reference} has cloned rows; it must be a closed set (train/val/test)")
    check_closed(ref)
    cloned = load_manifest_file(manifest, "cloned", data_root, offsets, default_role="cloned", lenient=lenient)
    wrong = [t for t in cloned.tracks if t.role != "cloned"]
    if wrong:
        raise UserError(f"--manifest {manifest}: track {wrong[0].id} has role {wrong[0].role!r}; cloned rows only")
    known = set(ref.singers)
    for t in cloned.tracks:
        for s in t.singers:
            if s not in known:
                raise UserError(
                    f"cloned track {t.id} names singer {s}, whom the reference set {reference} lacks; "
                    "every cloned target must be a closed-set singer"
                )
    ids = {t.id for t in ref.tracks}
    clash = [t.id for t in cloned.tracks if t.id in ids]
    if clash:
        raise UserError(f"cloned track id {clash[0]} is also a track id of the reference set; ids must be unique")
    targets = sorted({s for t in cloned.tracks for s in t.singers}, key=ref.singers.index)
    return Manifest(
        name="cloned",
        tracks=ref.tracks + cloned.tracks,
        singers=ref.singers,
        description=f"cloned songs of {manifest} against the closed set {reference}",
        root=cloned.root,
        extra={"cloned_targets": targets, "manifest": str(manifest), "reference": str(reference)},
    )
