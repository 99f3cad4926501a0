"""Prompt building for the three modes: pure functions, no I/O.

Each mode module turns user input into a ``Prompt`` (``playground.prompt``)
that fits the model's context, and turns raw output back into what the user
sees. Token counts come in as a function, so these stay testable without a model.
"""
