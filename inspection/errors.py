"""Errors a user can act on: each names the file or setting at fault and what is wrong with it."""


class InspectionError(Exception):
    """Base class for errors reported to the user without a traceback."""


class ImageError(InspectionError):
    """An image that cannot be inspected (unreadable, corrupt, wrong format)."""


class ModelError(InspectionError):
    """A model file that is not ONNX, or lacks this project's metadata."""


class DatasetError(InspectionError):
    """A training or evaluation folder that is missing, empty or laid out wrongly."""
