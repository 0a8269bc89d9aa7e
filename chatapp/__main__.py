"""`python -m chatapp`: the CLI (see `chatapp.cli`)."""

import gc
import sys

# Importing the server makes tens of thousands of objects that live as long as
# the process (classes, pydantic models and their schemas); the collections they
# set off took about a sixth of the import and found next to nothing to free.
# `main` turns the collector back on before it does anything else.
gc.disable()

from chatapp.cli import main  # noqa: E402

sys.exit(main())
