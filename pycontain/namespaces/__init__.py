"""One module per namespace type, each named as the kernel names it (`/proc/<pid>/ns/<name>`).

Lesson 02 brings `uts`; the others arrive with their lessons (CURRICULUM.md).
"""
