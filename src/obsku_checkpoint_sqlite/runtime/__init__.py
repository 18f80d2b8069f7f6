"""The runtime: URLs and drivers, engines and SQLite connections, the short path, failures, and
the runners, the only place that knows threads and event loops."""
