"""SQLAlchemy tables, repositories, the unit of work and read queries."""
