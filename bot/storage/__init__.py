"""Storage: SQLAlchemy 2.0 models, the async engine and the Alembic migrations shipped with them."""
