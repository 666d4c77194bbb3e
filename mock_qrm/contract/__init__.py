"""What the server and its clients share: the wire models, the error types, the rules of
free text, the event catalog and the time format. Nothing here does I/O."""
