"""Feature store: definitions, offline retrieval, online stores, materialization."""
