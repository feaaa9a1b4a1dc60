"""injectctl: drivers."""
