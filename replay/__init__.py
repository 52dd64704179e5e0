"""callback-replay: replay recorded training metrics through exact Keras callback policies."""

__version__ = "0.1.0"
