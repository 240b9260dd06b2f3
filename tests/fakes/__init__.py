"""Fakes of outside systems that speak their real protocol on a loopback port."""
