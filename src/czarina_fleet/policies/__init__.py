"""Pure functions: scaling, placement, idle, rebalancing, interruption."""
