"""Test and benchmark support: stand-in servers, a live app server, and real engines.

``tests/`` and ``bench/`` both import from here; nothing here is imported by
the app itself. Stand-ins mirror servers that cannot run on this machine
(each module names the real server it mirrors).
"""
