"""Owns the job functions the python-rq test enqueues; a module of its own so rq's worker can
import them by name."""


def add(a, b):
    return a + b
