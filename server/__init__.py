"""Parley: multi-tenant live chat."""
