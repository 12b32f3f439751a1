"""A fake Telegram Bot API server on 127.0.0.1 for the real client libraries (to be written)."""
