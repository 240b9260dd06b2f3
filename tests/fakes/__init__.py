"""Fake outside systems: real HTTP servers on loopback ports that speak the providers'
protocols (signatures, refusals, replays), for the adapters' tests."""
