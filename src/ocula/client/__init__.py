"""Python clients: ``Client`` and the handles it returns."""
