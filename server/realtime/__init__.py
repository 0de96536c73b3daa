"""Realtime transport: the socketify websocket gateway (Socket.IO protocol)."""
