"""singerbench: a plugin benchmark for singer-identification embeddings, on real and cloned voices."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("singerbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

PROTOCOL_VERSION = "2"
