"""The pass tests share `pass_cases.py`; tests run with --import-mode=importlib, which puts no
test folder on sys.path, so this one is put there."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
