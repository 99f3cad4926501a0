"""Support code shared by the tests and the benchmarks: real inference engines started on demand.

See ``support.engines`` and ``docs/engines.md``.
"""
