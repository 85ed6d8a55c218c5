"""The window: the only layer that imports PySide6.

viewmodels/ (QObjects with typed signals over app.core), windows/ (top-level windows that
wire view-models to widgets), widgets/ (show what they are given, report through signals).
"""
