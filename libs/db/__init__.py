"""PostgreSQL plumbing: asyncpg pool, transactions, migrations, transactional outbox and processed events."""
