"""The course kit: grading learner notebooks (issue 16).

- `cells`: the conventions a generated notebook follows, written by tools/notebooks.py and read
  by the grader: which cells are checks, their content hash, their points, nbgrader's metadata;
- `score`: pure scoring of an executed notebook against the pristine learner build;
- `runner`: the program that executes one notebook headless, inside a pycontain container;
- `grade`: the grader, one container per notebook, with limits on memory, processes and time;
- `report`: the four outputs: a terminal table, JSON, JUnit XML, Gradescope's results.json;
- `progress`: what a self-learner has done: each check's last result on this machine.

`pycontain grade SUBMISSION...` and `pycontain progress` (cli.py) are the front doors.
"""
