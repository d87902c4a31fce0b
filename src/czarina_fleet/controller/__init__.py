"""The reconciler (observe -> plan -> act), the scheduler and the state store."""
