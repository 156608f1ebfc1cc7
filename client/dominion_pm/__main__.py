"""`python -m dominion_pm` runs the same CLI as the `dominion-pm` script."""

from dominion_pm.cli import main

if __name__ == "__main__":
    main()
