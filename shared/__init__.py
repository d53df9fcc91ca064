"""guestctl's engine: everything the Functions app and the CLI share. Never imports azure.functions."""

__version__ = "0.1.0"
