"""Spec nodes -> a compiled `keras.Model`: layers and wiring (`build`), and
the optimizer, losses and metrics (`settings`); shared name helpers in
`names`. The only stage of `%%model` that imports Keras."""
