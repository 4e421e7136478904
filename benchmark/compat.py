"""Known clashes between third-party plugins and this environment, turned into one line that says the fix.

torchaudio: PyPI's torchaudio (2.11.1, the newest; ``Requires-Dist: torch>=2.11``) ships native libraries
linked against a CUDA build of torch (``libc10_cuda.so``, ``libtorch_cuda.so``), and PyPI has no CPU build.
Beside the project's CPU torch 2.13 ``import torchaudio`` fails with ``OSError: Could not load this library:
.../torchaudio/lib/_torchaudio.so``. Measured here: without those three ``.so`` files torchaudio imports in
its pure-Python mode and ``torchaudio.functional`` / ``torchaudio.transforms`` (resample, MelSpectrogram,
MFCC) work on CPU torch 2.13; ``torchaudio.load`` then needs torchcodec (CUDA-only on PyPI too), so plugins
should decode audio with soundfile (singerbench hands them waveforms anyway).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import traceback
from pathlib import Path

DOCS = "docs/baselines.md (Plugins that import torchaudio)"


def _from_torchaudio(e: BaseException) -> bool:
    """Whether ``e`` (or its cause) was raised while importing torchaudio."""
    seen: BaseException | None = e
    while seen is not None:
        if "torchaudio" in str(seen):
            return True
        frames = traceback.extract_tb(seen.__traceback__)
        if any(f"{Path('torchaudio')}{'/'}" in frame.filename.replace("\\", "/") for frame in frames):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def torchaudio_fix(e: BaseException) -> str | None:
    """The exact fix when ``e`` is torchaudio failing to load beside CPU torch; None for any other error."""
    if not isinstance(e, ImportError | OSError) or not _from_torchaudio(e):
        return None
    import torch

    try:
        version = importlib.metadata.version("torchaudio")
    except importlib.metadata.PackageNotFoundError:
        return None
    spec = importlib.util.find_spec("torchaudio")  # finds the package without running it
    locations = list(spec.submodule_search_locations or []) if spec else []
    lib = Path(locations[0]) / "lib" if locations else Path("<site-packages>/torchaudio/lib")
    return (
        f"torchaudio {version} cannot load beside torch {torch.__version__}: its native libraries need a CUDA "
        "build of torch, and PyPI has no CPU build of torchaudio. Its pure-Python parts (transforms, functional) "
        f"work here once those libraries are removed: rm {lib}/*.so (decode audio with soundfile, not "
        f"torchaudio.load); see {DOCS}"
    )
