"""The whole check, as CI runs it: lint, format, types, then every test.

.venv/bin/python tests/check.py [extra pytest arguments]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

STEPS = [
    ("ruff lint", [PYTHON, "-m", "ruff", "check", "."]),
    ("ruff format", [PYTHON, "-m", "ruff", "format", "--check", "."]),
    ("mypy", [PYTHON, "-m", "mypy"]),
    # The layers and seams of docs/architecture.md, as contracts in pyproject.toml.
    ("import contracts", [str(Path(PYTHON).parent / "lint-imports"), "--no-cache"]),
    # The benchmark with tiny sizes, so it cannot rot; no timing is asserted.
    ("benchmark (quick)", [PYTHON, "-m", "bench", "--quick"]),
]


def main() -> int:
    failed = []
    for name, command in STEPS:
        print(f"== {name}", flush=True)
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            failed.append(name)
    print("== pytest", flush=True)
    tests = subprocess.run([PYTHON, "-m", "pytest", *sys.argv[1:]], cwd=ROOT).returncode
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
        return 1
    return tests


if __name__ == "__main__":
    sys.exit(main())
