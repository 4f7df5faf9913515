"""``python -m mosslite``: the same command as ``mosslite``."""

from .cli import main

if __name__ == "__main__":
    main()
