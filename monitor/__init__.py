"""newsmon: a stream-processing news monitor."""

__version__ = "0.2.0"
PROJECT_URL = "https://github.com/newsmon/newsmon"
