"""Use cases: each loads aggregates, applies the rules and commits one unit of work."""
