"""PostgreSQL storage: schema, appender, stored Merkle hashes, checkpoints."""
