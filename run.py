"""Start the chat server: `python run.py [--config FILE] [--host H] [--port P] [--data-dir D]`."""

import gc
import sys

if __name__ == "__main__":
    # The collector is paused while the server is imported, as `python -m
    # chatapp` does (see chatapp/__main__.py); `main` turns it back on.
    gc.disable()
    from chatapp.cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
