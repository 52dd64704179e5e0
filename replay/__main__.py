"""``python -m replay``."""

from replay.commands.cli import main

if __name__ == "__main__":
    main()
