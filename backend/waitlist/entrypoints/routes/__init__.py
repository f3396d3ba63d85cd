"""One module per API: staff, replies (for the actions), Twilio status callbacks, operations."""
