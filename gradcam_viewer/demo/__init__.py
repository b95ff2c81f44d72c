"""The synthetic-phantom demo: a chest phantom generator and the demo model trained on it."""
