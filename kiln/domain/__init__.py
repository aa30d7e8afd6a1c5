"""Kiln's decisions, without I/O: one aggregate per entity.

An aggregate answers ``decide(command, now) -> list[Event]`` (or raises a ``DomainError``) and
folds events into its state with ``apply(event)``. Time is passed in, never read, so every rule
(push backoff, flap detection, schedules) is tested by given/when/then without a clock. Actors
own aggregates, journal what ``decide`` returns, then run the effects. This package imports only
``kiln.domain`` and ``kiln.events`` (tests/unit/test_layers.py holds it to that).
"""
