"""Start the chat server: `python run.py [--config FILE] [--host H] [--port P] [--data-dir D]`."""

import sys

from chatapp.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
