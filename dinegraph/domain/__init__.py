"""Pure rules of the product: no database, GraphQL or web framework is imported here."""
