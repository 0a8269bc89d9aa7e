"""Cluster mode: the pieces a node shares with the others through Redis."""
