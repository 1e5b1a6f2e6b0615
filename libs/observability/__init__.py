"""JSON logging with secret redaction, the /healthz /readyz /metrics app factory, and the service runner."""
