"""Edge visual quality inspection: frame -> model -> result -> publish -> store -> page."""

__version__ = "0.1.0"
