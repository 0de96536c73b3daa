"""The REST API, version 1 (``/api/v1``): everything the console does, open to headless clients."""
