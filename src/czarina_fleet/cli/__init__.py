"""The `czarina` command: thin; parses arguments, calls the app, renders."""
