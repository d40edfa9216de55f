"""Local stand-ins for Bpium, Google Calendar (with OAuth) and Secret Manager. Never deployed."""
