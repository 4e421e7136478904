"""The ``synth`` dataset adapter: generated singers, rendered on first use and cached in the user cache dir.

The corpus folder is keyed by preset, seed and generator version, so a second load renders nothing and a new
generator version never reads an old rendering. See docs/synth.md for what is in it.
"""

from __future__ import annotations

from pathlib import Path

from singerbench.datasets import register_dataset
from singerbench.errors import UserError
from singerbench.manifest import Manifest
from singerbench.paths import station_dir
from singerbench.synthgen import (
    GENERATOR_VERSION,
    PRESETS,
    install_command,
    is_complete,
    missing_packages,
    render_corpus,
    resolve_preset,
)
from singerbench.synthgen.system import INSTALL_COMMAND, base_missing

DEFAULT_PRESET = "small"


def corpus_dir(preset: str, seed: int, cache_dir: Path | None = None, confound: float | None = None) -> Path:
    """Where the corpus of ``preset``, ``seed`` (and a non-default ``confound``) lives under the cache root."""
    p = resolve_preset(preset, confound)
    dial = "" if p.confound == PRESETS[preset].confound else f"-confound{p.confound:g}"
    return station_dir("synth", cache_dir) / f"{preset}-seed{seed}{dial}-v{GENERATOR_VERSION}"


def _large_note() -> tuple[int, str]:
    """How many singers the large preset has here, and what would add the missing ones."""
    missing = missing_packages("all")
    singers = len(PRESETS["large"].singers())
    if not missing:
        return singers, f"{singers} singers installed"
    return singers, (f"{singers} singers installed; missing system packages ({', '.join(missing)}); "
                     f"install with: {install_command(missing)}")


def status(preset: str = DEFAULT_PRESET, seed: int = 0, cache_dir: Path | None = None,
           confound: float | None = None, **_: object) -> tuple[bool, str]:
    """Cheap readiness check: rendered already, or renderable (system packages present), or what to install.

    The message also says how many singers the large preset would have here and what it lacks.
    """
    if preset not in PRESETS:
        return False, f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}"
    try:
        p = resolve_preset(preset, confound)
    except UserError as e:
        return False, str(e)
    folder = corpus_dir(preset, seed, cache_dir, confound)
    singers, large = _large_note()
    if is_complete(folder, preset, seed, confound=confound):
        return True, f"rendered ({preset}, seed {seed}) in {folder}; preset large: {large}"
    if p.voices != "festival":
        return singers >= 3 and not base_missing(), f"{preset} renders on first use into {folder}: {large}"
    missing = missing_packages()
    if missing:
        return False, f"missing system packages ({', '.join(missing)}); install with: {INSTALL_COMMAND}"
    return True, f"renders on first use ({preset}, seed {seed}) into {folder}; preset large: {large}"


@register_dataset(
    "synth",
    description="Generated singers: real recorded voices (10 Festival; large: 100 people, 5 engines) singing "
    "generated songs in home styles, plus clones",
    needs="festival + 10 festvox voices, fluidsynth, fluid-soundfont-gm (Debian); large also mbrola, espeak-ng, "
    "rhvoice, libttspico-utils, flite and their voices (`make system`); no download",
    status=status,
)
def load(
    preset: str = DEFAULT_PRESET,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
    render: bool = True,
    confound: float | None = None,
) -> Manifest:
    """Render the corpus on first use (then it is a cache hit) and return its Manifest.

    ``render=False`` (a harness option: readers such as the probe) only reads a corpus already rendered.
    ``confound``: probability that a real song's backing is in its singer's home style (default: the
    preset's; 0 removes the catalogue confound); ``-D confound=0.3`` on the command line.
    """
    resolve_preset(preset, confound)  # a bad preset name or confound fails here
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise UserError(f"synth seed must be an integer, not {seed!r}") from None
    folder = corpus_dir(preset, seed, cache_dir, confound)
    if not render and not is_complete(folder, preset, seed, confound=confound):
        dial = "" if confound is None else f" --confound {confound}"
        raise UserError(
            f"the generated corpus ({preset}, seed {seed}) is not rendered in {folder}; render it with "
            f"`singerbench synth --preset {preset} --seed {seed}{dial} --out {folder}` (or give the same --cache-dir)"
        )
    path = render_corpus(preset, seed, folder, progress=progress, confound=confound)
    return Manifest.from_json(path)
