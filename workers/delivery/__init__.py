"""Delivering alerts: signed webhook sends, their outcomes, endpoint health, dead letters."""
