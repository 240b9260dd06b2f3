"""dinegraph: a GraphQL backend-for-frontend for restaurant chains."""

__version__ = "0.1.0"
