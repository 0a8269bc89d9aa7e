"""One module per scenario; each has `Params` and `async def run(target, params) -> dict`."""
