"""The system packages the generator needs, checked cheaply: the voice engines and their voices (the voices
table), fluidsynth and a GM soundfont. Two sets: the ten Festival voices (presets tiny, small, full) and every
voice of the table (preset large)."""

from __future__ import annotations

import shutil

from singerbench.errors import UserError
from singerbench.synthgen import backing
from singerbench.synthgen.engines import ENGINES
from singerbench.synthgen.voices import FESTIVAL_IDS, VOICE_BY_ID, VOICES

FESTIVAL_VOICES = [VOICE_BY_ID[i] for i in FESTIVAL_IDS]
PACKAGES = ("festival", *(v.package for v in FESTIVAL_VOICES), "fluidsynth", "fluid-soundfont-gm")
#: every package of the large preset, in install order (engines, then voices, deduplicated); the Makefile's
#: SYSTEM_PACKAGES must hold them all (tests/test_synth_large.py)
ALL_PACKAGES = tuple(dict.fromkeys(
    ["festival", "fluidsynth", "fluid-soundfont-gm"]
    + [p for e in ENGINES.values() for p in e.packages]
    + [v.package for v in VOICES]
))
#: packages from Debian's contrib or non-free sections, which a stock image does not enable
NON_FREE_PREFIXES = ("mbrola", "rhvoice", "libttspico")


def install_command(packages: list[str] | tuple[str, ...]) -> str:
    """One line that installs ``packages`` (noting the apt sections that non-free ones need)."""
    cmd = "sudo apt-get update && sudo apt-get install -y " + " ".join(packages)
    if any(p.startswith(NON_FREE_PREFIXES) for p in packages):
        cmd = "enable Debian's contrib and non-free sections (`make system` does), then " + cmd
    return cmd


INSTALL_COMMAND = install_command(PACKAGES)  # the tiny to full presets: Festival's voices, all in main


def base_missing() -> list[str]:
    """What every preset needs and is missing: Festival (the tiny-to-full voices' engine), fluidsynth, the soundfont."""
    missing: list[str] = []
    if shutil.which("text2wave") is None or shutil.which("festival") is None:
        missing.append("festival")
    if shutil.which("fluidsynth") is None:
        missing.append("fluidsynth")
    if not backing.SOUNDFONT.is_file():
        missing.append("fluid-soundfont-gm")
    return missing


def missing_packages(voices: str = "festival") -> list[str]:
    """Debian packages whose files are missing on this machine (empty when everything is there).

    ``voices``: "festival" checks the ten Festival voices, "all" every voice of the table.
    """
    table = FESTIVAL_VOICES if voices == "festival" else VOICES
    missing = base_missing()
    if voices != "festival":
        missing += [pkg for e in ENGINES.values() for pkg, prog in e.programs.items()
                    if shutil.which(prog) is None and pkg not in missing]
    missing += list(dict.fromkeys(v.package for v in table
                                  if not ENGINES[v.engine].installed(v) and v.package not in missing))
    return missing


def check_system(voices: str = "festival") -> None:
    """Raise one UserError naming what is missing and the command that installs it; return if all is there.

    For "all", voices that are not installed are left out of the corpus (the status line of `singerbench
    datasets` names them); only the backing renderer and a first voice are required.
    """
    missing = missing_packages("festival") if voices == "festival" else base_missing()
    if missing:
        command = INSTALL_COMMAND if voices == "festival" else install_command(missing)
        raise UserError(
            f"the generated-singers corpus needs system packages that are missing ({', '.join(missing)}); "
            f"install them with: {command}"
        )
