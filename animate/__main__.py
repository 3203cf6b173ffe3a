"""`python -m animate` (and `accelerate launch -m animate`): the command line."""

import sys

from animate.app.cli import main

sys.exit(main())
