"""The load generator: a separate process that drives the server over real WebSockets.

The driver starts `python -m bench.loadgen JOB.json RESULT.json` on a CPU of
its own; the job names a scenario, a target (the chat server or the echo
relay) and the scenario's sizes, and the result is that scenario's numbers.
"""
