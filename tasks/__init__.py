"""Worker node: SAQ settings and jobs (thin: load by id, call a service)."""
