"""The pure scheduling core: standard library only, synchronous, deterministic.

Nothing here awaits, reads a clock, draws random numbers without an explicit seed,
or performs I/O. Callers pass ``now`` and immutable snapshots; functions return
values or decisions that the service layer persists.
"""
