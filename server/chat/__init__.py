"""Chat: visitors, conversations and messages."""
