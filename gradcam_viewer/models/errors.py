class ModelLoadError(Exception):
    """A model file that cannot be used; the message is meant for the user."""
