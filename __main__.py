"""`python -m tflc`: the same as the `tflc` command."""

from .cli import main

raise SystemExit(main())
