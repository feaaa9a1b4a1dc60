"""injectctl: firmware_bridge."""
