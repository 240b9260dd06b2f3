"""Thin functions that turn GraphQL calls into domain calls, and the per-request loaders."""
