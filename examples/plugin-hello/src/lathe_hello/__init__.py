"""Hello: a lathe plugin."""
