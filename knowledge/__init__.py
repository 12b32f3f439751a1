"""The business's knowledge base: entries, loaders, the retrieval index and its evaluation.

Pure code: no imports of `bot`, no I/O beyond reading the files it is handed. The FAQ dialog in
`dialogs` asks it for the best entries for a question. (Built by the knowledge-base issue.)
"""
