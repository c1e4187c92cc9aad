"""What every newsmon process shares: the data types passed between steps, config, Redis keys
and documents, logging, HTTP. It imports nothing else of newsmon."""

__version__ = "0.2.0"
PROJECT_URL = "https://github.com/newsmon/newsmon"
