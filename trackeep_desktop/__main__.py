import sys

from trackeep_desktop.cli import main

sys.exit(main())
