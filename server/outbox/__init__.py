"""The transactional outbox: events recorded in the writer's transaction, relayed to Redis."""
