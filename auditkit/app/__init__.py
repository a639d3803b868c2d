"""The application layer: run / load / write an audit, and its settings. Every face calls it."""
