"""The Qt-free core: what the window, the CLI and the HTTP server (app.server) share.

The chat service (command and stream paths), routes to local or remote models, providers,
settings, paths, the model library. May import engine and store; never PySide6, app.ui
or app.cli.
"""
