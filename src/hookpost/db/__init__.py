"""Database access: engine and sessions, the embedded Postgres, and the ORM models."""
