"""injectctl: controller."""
