"""Tenancy: projects (the root aggregate) and their members."""
