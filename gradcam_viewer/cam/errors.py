class CamError(ValueError):
    """A model or layer the engine cannot explain; the message is meant for the user."""
