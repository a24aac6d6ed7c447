"""Threads and loops that run beside the caller: the background loop and output routing.

Imports only ``resnetlab.errors`` and ``resnetlab.utils``: ``metrics/``, ``live/`` and
``jobs/`` build on it.
"""
