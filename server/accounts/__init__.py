"""Accounts: users, passwords, console sessions and API keys."""
