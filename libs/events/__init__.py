"""The cross-service contract: typed SIDs, event models, topic names, codec and consumer runner."""
