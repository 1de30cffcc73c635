"""Database access: engine, session scope (the only commit point) and migrations."""
