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
from singerbench.synthgen import GENERATOR_VERSION, PRESETS, is_complete, missing_packages, render_corpus
from singerbench.synthgen.system import INSTALL_COMMAND

DEFAULT_PRESET = "small"


def corpus_dir(preset: str, seed: int, cache_dir: Path | None = None) -> Path:
    """Where the corpus of ``preset`` and ``seed`` lives under the cache root."""
    return station_dir("synth", cache_dir) / f"{preset}-seed{seed}-v{GENERATOR_VERSION}"


def status(preset: str = DEFAULT_PRESET, seed: int = 0, cache_dir: Path | None = None, **_: object) -> tuple[bool, str]:
    """Cheap readiness check: rendered already, or renderable (system packages present), or what to install."""
    if preset not in PRESETS:
        return False, f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}"
    folder = corpus_dir(preset, seed, cache_dir)
    if is_complete(folder, preset, seed):
        return True, f"rendered ({preset}, seed {seed}) in {folder}"
    missing = missing_packages()
    if missing:
        return False, f"missing system packages ({', '.join(missing)}); install with: {INSTALL_COMMAND}"
    return True, f"renders on first use ({preset}, seed {seed}) into {folder}"


@register_dataset(
    "synth",
    description="Generated singers: 10 real Festival voices singing generated songs in home styles, plus clones",
    needs="festival + 10 festvox voices, fluidsynth, fluid-soundfont-gm (Debian); no download",
    status=status,
)
def load(
    preset: str = DEFAULT_PRESET,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
    render: bool = True,
) -> Manifest:
    """Render the corpus on first use (then it is a cache hit) and return its Manifest.

    ``render=False`` (a harness option: readers such as the probe) only reads a corpus already rendered."""
    if preset not in PRESETS:
        raise UserError(f"unknown synth preset {preset!r}; choose one of {', '.join(PRESETS)}")
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise UserError(f"synth seed must be an integer, not {seed!r}") from None
    folder = corpus_dir(preset, seed, cache_dir)
    if not render and not is_complete(folder, preset, seed):
        raise UserError(
            f"the generated corpus ({preset}, seed {seed}) is not rendered in {folder}; render it with "
            f"`singerbench synth --preset {preset} --seed {seed} --out {folder}` (or give the same --cache-dir)"
        )
    path = render_corpus(preset, seed, folder, progress=progress)
    return Manifest.from_json(path)
