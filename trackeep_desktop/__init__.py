"""Trackeep Desktop: a self-hosted productivity and knowledge hub, as one program."""

__version__ = "0.1.0"
