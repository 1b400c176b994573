"""`python -m pycontain` is the `pycontain` command."""

from pycontain.cli import main

if __name__ == "__main__":
    main()
