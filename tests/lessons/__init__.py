"""Lesson tests: sources and notebooks in sync, import order, and the learner build's checks."""
