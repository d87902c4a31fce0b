"""Price catalog, cost ledger, reports (CSV, JSON, FOCUS)."""
