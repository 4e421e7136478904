"""Generated singers: the embedded default dataset (real Festival voices, generated songs, vocoded clones).

Modules, one job each: ``voices`` (the ten Festival voices and singing), ``melody`` (song form and melodies),
``styles`` (each singer's home style), ``backing`` (MIDI writing and fluidsynth), ``clone`` (the vocoder),
``mix`` (stems, VAR and vocal activity), ``system`` (system-package check), ``corpus`` (presets, plan,
rendering, cache and manifest). See docs/synth.md.
"""

from singerbench.synthgen.corpus import (
    GENERATOR_VERSION,
    HOME_STYLE,
    PRESETS,
    SINGER_IDS,
    Preset,
    is_complete,
    render_corpus,
)
from singerbench.synthgen.mix import MIN_ACTIVE_SHARE, SEGMENT_SECONDS
from singerbench.synthgen.system import INSTALL_COMMAND, check_system, missing_packages

__all__ = [
    "GENERATOR_VERSION",
    "HOME_STYLE",
    "INSTALL_COMMAND",
    "MIN_ACTIVE_SHARE",
    "PRESETS",
    "Preset",
    "SEGMENT_SECONDS",
    "SINGER_IDS",
    "check_system",
    "is_complete",
    "missing_packages",
    "render_corpus",
]
