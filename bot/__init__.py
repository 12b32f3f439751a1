"""The runtime: configuration, storage, the engine, channels, the web app and the CLI.

`bot` wires the pure `dialogs` (and later `knowledge`) to the world: it identifies customers,
runs each inbound message through the dialogs in one database transaction, applies the
effects they return and hands the replies to the channel the message came from.
"""
