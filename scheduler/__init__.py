"""Proactive messages: APScheduler ticks, the jobs they run, campaigns, the outbox, the dispatcher.

Every message the bot sends on its own initiative (birthday greeting, maintenance or appointment
reminder, campaign, event invitation, staff reply) is a row in one outbox with a unique dedupe
key; one dispatcher sends due rows under one contact policy (`policy`) and Telegram's rate
limits (`ratelimit`), marking each row `sending` before the send so that nothing is ever sent
twice. APScheduler only ticks the jobs (`runtime`), in the one process holding the leader lock
(`leader`); what is due lives in the database, never in a job store. Jobs and campaigns reach
customers only by writing the outbox; the dispatcher is the one place that calls a channel.
"""
