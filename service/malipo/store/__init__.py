"""PostgreSQL adapters (asyncpg): migrations, repositories, the unit of work, LISTEN/NOTIFY."""
