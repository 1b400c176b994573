"""Attacking your own container: real escapes, each shown succeeding where a defence is missing
and failing where pycontain has it (`escape`: out of a chroot through "..", lesson 05).

These run only inside containers the lesson made, and touch only files it made.
"""
