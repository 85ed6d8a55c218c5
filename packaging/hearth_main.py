"""The installed app's entry point (PyInstaller bundles start here): the `hearth` command.

freeze_support: the engine and the doctor's self-test run in spawned processes, which in a
bundle start this same executable; multiprocessing takes those over here, before `app.main`
(and all it imports) is loaded for nothing in a process that only runs the engine.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.main import main

    sys.exit(main())
