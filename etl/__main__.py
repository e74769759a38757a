"""``python -m etl`` runs the command line."""

from etl.cli import main

if __name__ == "__main__":
    main()
