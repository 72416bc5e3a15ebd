"""Entry point for ``python -m runbook_engine``."""

from runbook_engine.cli import main

if __name__ == "__main__":
    main()
