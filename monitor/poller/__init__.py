"""The poller: feeds in, new entries onto the queue (fetch -> parse -> seen -> enqueue)."""
