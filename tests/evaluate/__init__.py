"""Tests of playground.evaluate: scoring, the sandbox, saved runs and the CLI."""
