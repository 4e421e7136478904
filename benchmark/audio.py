"""Decoding audio files into the float32 arrays the stations pass around.

Every track goes through :func:`load_audio`: soundfile decodes it (wav, flac, ogg, mp3), soxr resamples it
(quality ``HQ``, deterministic: the same file gives the same samples on every run), and the channels are
matched to what the plugin asked for. :func:`peak_normalise` then divides a whole loaded track by its peak,
as the paper's code did, so a segment's level does not depend on where it was cut.

Every failure a user can fix (missing file, a file soundfile cannot decode, a silent track, an offset past
the end) raises :class:`~singerbench.errors.UserError` with one line that names the file.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from singerbench.errors import UserError

#: soxr quality used for every resampling ("HQ": 20-bit precision, linear phase, deterministic).
RESAMPLE_QUALITY = "HQ"


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: native sample rate, channel count and length in frames."""

    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _check_exists(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file {path} does not exist")
    return path


def audio_info(path: Path) -> AudioInfo:
    """Read a file's header only (cheap): sample rate, channels, frames."""
    path = _check_exists(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise UserError(f"cannot decode audio file {path}: {_sf_message(e)}") from None
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))


def _sf_message(e: Exception) -> str:
    msg = " ".join(str(getattr(e, "error_string", None) or e).split())
    if msg.startswith("File does not exist or is not a regular file"):
        # libsndfile's words for a file it cannot parse, though the file is there: say what it means
        return "not a readable audio stream (corrupt, truncated or an unsupported format)"
    return msg


def _match_channels(x: np.ndarray, channels: int, path: Path) -> np.ndarray:
    """(frames, C) -> (frames, channels): mean for mono, duplication of mono for stereo (the paper's code)."""
    if channels not in (1, 2):
        raise UserError(f"{channels} channels asked for {path}; singerbench delivers 1 (mono) or 2 (stereo)")
    have = x.shape[1]
    if have == channels:
        return x
    if channels == 1:
        return x.mean(axis=1, keepdims=True, dtype=np.float32)
    if have == 1:
        return np.repeat(x, 2, axis=1)
    return x[:, :2]  # more than two channels: front left/right, as demucs does


def _resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate or x.shape[0] == 0:
        return x
    y = soxr.resample(x, from_rate, to_rate, quality=RESAMPLE_QUALITY)
    return np.asarray(y, dtype=np.float32).reshape(-1, x.shape[1])


def load_audio(path: Path, sample_rate: int, channels: int) -> np.ndarray:
    """Decode a whole file to ``(channels, samples)`` float32 at ``sample_rate`` (not normalised).

    Channels are matched before resampling when that is cheaper (downmix) and after when it is (duplicate).
    """
    path = _check_exists(path)
    try:
        x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise UserError(f"cannot decode audio file {path}: {_sf_message(e)}") from None
    if x.shape[0] == 0:
        raise UserError(f"audio file {path} holds no samples")
    if not np.isfinite(x).all():
        raise UserError(f"audio file {path} holds NaN or infinite samples")
    if channels == 1:
        x = _resample(_match_channels(x, 1, path), rate, sample_rate)
    else:
        x = _match_channels(_resample(x if x.shape[1] <= 2 else x[:, :2], rate, sample_rate), channels, path)
    return np.ascontiguousarray(x.T, dtype=np.float32)


def peak_normalise(x: np.ndarray, what: str | Path = "audio") -> np.ndarray:
    """Divide by the peak absolute value (per loaded track, as the paper's code did); float32 out.

    ``what`` names the audio in the error raised for silence, which cannot be normalised.
    """
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not peak > 0.0 or not np.isfinite(peak):
        raise UserError(f"{what} is silent (all samples are zero): cannot peak-normalise it")
    return (x / np.float32(peak)).astype(np.float32, copy=False)


def read_segment(path: Path, offset_s: float, seconds: float, sample_rate: int, channels: int) -> np.ndarray:
    """Decode only ``seconds`` from ``offset_s`` (soundfile seek), ``(channels, samples)``, zero-padded at the end.

    For long files when one segment is needed. Not peak-normalised: the peak of a whole track is only known
    after decoding all of it, which is why :class:`~singerbench.segments.SegmentSource` decodes whole tracks.
    """
    path = _check_exists(path)
    if offset_s < 0:
        raise UserError(f"offset {offset_s:.3f} s in {path} is negative")
    want = int(round(seconds * sample_rate))
    try:
        with sf.SoundFile(str(path)) as f:
            rate, frames = f.samplerate, f.frames
            start = int(round(offset_s * rate))
            if start >= frames:
                raise UserError(
                    f"offset {offset_s:.3f} s is at or after the end of {path} ({frames / rate:.3f} s long)"
                )
            f.seek(start)
            x = f.read(int(np.ceil(seconds * rate)), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise UserError(f"cannot decode audio file {path}: {_sf_message(e)}") from None
    if channels == 1:
        x = _resample(_match_channels(x, 1, path), rate, sample_rate)
    else:
        x = _match_channels(_resample(x if x.shape[1] <= 2 else x[:, :2], rate, sample_rate), channels, path)
    out = np.zeros((channels, want), dtype=np.float32)
    n = min(want, x.shape[0])
    out[:, :n] = x[:n].T
    return out


# --- file identity --------------------------------------------------------------------------------------

_DIGESTS: OrderedDict[tuple, str] = OrderedDict()
_DIGESTS_LOCK = threading.Lock()


def file_stat_key(path: Path) -> tuple[str, int, int, int]:
    """(resolved path, size, mtime_ns, inode): changes whenever the file is rewritten."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"audio file {path} does not exist") from None
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def is_racy(stat_key: tuple[str, int, int, int]) -> bool:
    """True when the file changed less than 2 s ago: a rewrite within the clock's granularity could keep
    size and mtime, so such a digest is not memoised (the same rule git uses for its index)."""
    return time.time_ns() - stat_key[2] < 2_000_000_000


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex), memoised in this process on :func:`file_stat_key`.

    Content, not path, identifies audio: a dataset moved or copied elsewhere keeps its cache entries, and a
    file rewritten with new audio gets new ones. Hashing runs at about 1.5 GB/s here.
    """
    key = file_stat_key(path)
    with _DIGESTS_LOCK:
        if key in _DIGESTS:
            _DIGESTS.move_to_end(key)
            return _DIGESTS[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    if is_racy(key):
        return digest
    with _DIGESTS_LOCK:
        _DIGESTS[key] = digest
        while len(_DIGESTS) > 100_000:
            _DIGESTS.popitem(last=False)
    return digest
