"""The spec language of `%%model`: lexer, parser, nodes, lint and code
generation. Pure: imports neither Keras nor IPython (a test checks it);
`nbkeras.modelbuild` turns the nodes into Keras objects and
`nbkeras.notebook` binds and shows them in the notebook."""
