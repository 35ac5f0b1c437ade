"""The {{name}} plugin."""

__version__ = "{{version}}"
