"""``python -m convexnn.cli``."""

from convexnn.cli._main import main

if __name__ == "__main__":  # pragma: no cover
    main()
