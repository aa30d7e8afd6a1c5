"""Outbound delivery of the journal to other services (webhook subscriptions), off the API's loop."""
