"""The staff side: who the staff are, what they see of a ticket, and the Telegram staff group."""
