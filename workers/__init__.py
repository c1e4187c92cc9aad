"""The workers: queued entries in, alerts out (pipeline), delivered over webhooks (delivery)."""
