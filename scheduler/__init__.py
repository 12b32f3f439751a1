"""Proactive messages: APScheduler ticks, the jobs they run, campaigns and the outbox.

The scheduler reaches customers only through the outbox and the store, never a channel
directly. (Built by the scheduler issue.)
"""
