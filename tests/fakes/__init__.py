"""Fakes of outside systems: real HTTP servers on loopback ports speaking their protocols."""
