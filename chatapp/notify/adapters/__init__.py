"""Where the notify module's state lives outside the process (cluster mode only)."""
