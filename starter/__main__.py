"""``python -m starter``: the command line a person uses."""

from starter.cli import main

if __name__ == "__main__":
    main()
