"""injectctl: simulator."""
