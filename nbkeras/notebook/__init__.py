"""Notebook-facing code of the magics: the `%%model` cell (binding the name,
showing the summary and code), the bracket-aware line splitter, and the echo
control of `%fit`'s return value."""
