"""Cost engine: price catalog, quotes, ledger, budgets, right-sizing."""
