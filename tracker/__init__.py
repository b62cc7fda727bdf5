"""tracker: the foreground app, classified, written to your own InfluxDB."""

__version__ = "0.1.0"

# The formats of `tracker run`'s log lines; here so the command line offers them without importing the display.
LOG_FORMATS = ("text", "json")
# The formats `tracker export` writes (tracker.export); here so the command line offers them without importing it.
EXPORT_FORMATS = ("activitywatch", "jsonl", "csv")
