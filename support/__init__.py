"""Test and benchmark support: stand-in servers, a live app server, and real engines started on demand.

``tests/`` and ``bench/`` both import from here; the app itself never does.
Stand-ins mirror servers that cannot run on this machine (each module names
the real server it mirrors); ``engines`` starts real ones (``transformers
serve``, llama.cpp's server) on the shipped nano-starcoder.
"""
