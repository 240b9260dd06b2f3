"""Broker adapters that carry domain events between processes (memory, PostgreSQL, Redis)."""
