"""Fake external services for tests: real servers on 127.0.0.1 that answer like the real ones."""
