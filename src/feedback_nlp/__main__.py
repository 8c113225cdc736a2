"""``python -m feedback_nlp``: the ``feedback-nlp`` command line, where the script is not on PATH.

Example::

    python -m feedback_nlp --version
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
