"""What operators watch: Prometheus metrics, readiness, structured logs (docs/operations.md)."""
