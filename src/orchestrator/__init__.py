"""orchestrator: one scheduler for every way a job seeker reaches a public employment agency."""

__version__ = "0.1.0"
