"""`python -m earshot …` is the same as `earshot …`."""
from .cli import main

raise SystemExit(main())
