"""injectctl: dashboard."""
