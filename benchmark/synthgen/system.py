"""The system packages the generator needs (Festival, its ten voices, fluidsynth, a GM soundfont), checked cheaply."""

from __future__ import annotations

import shutil
from pathlib import Path

from singerbench.errors import UserError
from singerbench.synthgen.backing import SOUNDFONT
from singerbench.synthgen.voices import VOICES

VOICE_ROOTS = (Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices"),
               Path("/usr/local/share/festival/voices"))
PACKAGES = ("festival", *(v.package for v in VOICES), "fluidsynth", "fluid-soundfont-gm")
INSTALL_COMMAND = "sudo apt-get update && sudo apt-get install -y " + " ".join(PACKAGES)


def _voice_installed(festival_name: str) -> bool:
    return any(root.is_dir() and any(root.glob(f"*/{festival_name}")) for root in VOICE_ROOTS)


def missing_packages() -> list[str]:
    """Debian packages whose files are missing on this machine (empty when everything is there)."""
    missing: list[str] = []
    if shutil.which("text2wave") is None or shutil.which("festival") is None:
        missing.append("festival")
    missing += [v.package for v in VOICES if not _voice_installed(v.festival_name)]
    if shutil.which("fluidsynth") is None:
        missing.append("fluidsynth")
    if not SOUNDFONT.is_file():
        missing.append("fluid-soundfont-gm")
    return missing


def check_system() -> None:
    """Raise one UserError naming what is missing and the command that installs it; return if all is there."""
    missing = missing_packages()
    if missing:
        raise UserError(
            f"the generated-singers corpus needs system packages that are missing ({', '.join(missing)}); "
            f"install them with: {INSTALL_COMMAND}"
        )
