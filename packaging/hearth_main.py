"""The installed app's entry point (PyInstaller bundles start here): the `hearth` command.

freeze_support: the engine and the doctor's self-test run in spawned processes, which in a
bundle start this same executable; it must hand them over to multiprocessing before `main`.
"""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
