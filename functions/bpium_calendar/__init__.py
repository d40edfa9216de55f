"""Keeps Google Calendar in step with Bpium's Meetings catalog."""
