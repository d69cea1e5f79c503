"""``python -m splineviz``: see splineviz.cli."""
import sys

from splineviz.cli import main

sys.exit(main())
