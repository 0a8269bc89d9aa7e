"""The benchmark harness: the server in its own process, driven over real WebSockets.

`python -m bench` runs every scenario and writes `bench/results/latest.json`
and `docs/benchmarks.md`; `python -m bench --help` lists the options.
"""
