"""The frozen program's entry point: the same ``trackeep`` command as the installed one.

Nothing but the command-line module is imported here, so ``trackeep serve`` can still
monkey-patch with gevent before anything opens a socket or starts a thread.
"""

import sys

from trackeep_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())
