"""Generated singers: the embedded default dataset (real recorded voices, generated songs, vocoded clones).

Modules, one job each: ``voices`` (the voices table), ``engines`` (Festival, MBROLA, RHVoice, Pico, Flite
behind one sing() interface), ``world`` (singing for speech-only voices through WORLD), ``melody`` (song form
and melodies), ``styles`` (genre families and home styles), ``backing`` (MIDI writing and fluidsynth),
``clone`` (the vocoder), ``realism`` (reverb, EQ, compression, mp3), ``mix`` (stems, VAR and vocal activity),
``system`` (system-package check), ``corpus`` (presets, plan, rendering, cache and manifest). See docs/synth.md.
"""

from singerbench.synthgen.corpus import (
    GENERATOR_VERSION,
    HOME_STYLE,
    PRESETS,
    SINGER_IDS,
    Preset,
    is_complete,
    render_corpus,
    resolve_preset,
)
from singerbench.synthgen.mix import MIN_ACTIVE_SHARE, SEGMENT_SECONDS
from singerbench.synthgen.system import INSTALL_COMMAND, check_system, install_command, missing_packages

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
    "install_command",
    "is_complete",
    "missing_packages",
    "render_corpus",
    "resolve_preset",
]
