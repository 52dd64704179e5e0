"""The version of callback-replay (one place: ``replay.__version__`` is this)."""

__version__ = "0.1.0"
