"""A local stand-in for Inspectorio QRM: reports API, webhook registry and delivery."""

__version__ = "0.1.0"
