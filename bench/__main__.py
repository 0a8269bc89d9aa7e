"""`python -m bench`: see `bench.driver`."""

from bench.driver import main

raise SystemExit(main())
