"""tracker: the foreground app, classified, written to your own InfluxDB."""

__version__ = "0.1.0"
