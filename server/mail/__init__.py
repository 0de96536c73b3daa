"""Outgoing e-mail: rendered from templates/mail/, sent by a SAQ job over SMTP (or kept in the
development mailbox when no SMTP server is configured)."""
