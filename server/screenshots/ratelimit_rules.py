"""Rate limits on screenshot requests: per agent (in a project) and per project, so neither one
agent nor a whole team can keep the renderers busy. Cache hits count too: they are requests."""

from server.ratelimit import Limit

PER_AGENT = Limit(scope="screenshot-agent", limit=30, window_seconds=60)
PER_PROJECT = Limit(scope="screenshot-project", limit=300, window_seconds=60)
