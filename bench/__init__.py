"""Benchmarks: ``make bench`` (``python -m bench``) prints one table of figures and their anchors.

Nothing here is a test: it reports figures. ``tests/bench`` runs the suite on a tiny size only, to
show it works.
"""
