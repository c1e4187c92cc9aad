"""newsmon: a stream-processing news monitor.

monitor.core is what every process shares (models, config, keys, logging, HTTP);
monitor.poller turns feeds into queued entries; monitor.ops is the operator's side (the
`newsmon` command, the web process, the supervisor). The workers package takes the entries
from there. The layers are a contract: see [tool.importlinter] in pyproject.toml.
"""
