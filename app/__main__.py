"""`python -m app`: the `hearth` command."""

import sys

from app.main import main

sys.exit(main())
