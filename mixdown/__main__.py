"""``python -m mixdown``"""

import sys

from mixdown.cli import main

sys.exit(main())
