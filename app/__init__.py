"""Hearth's application layer, in layers that its folders show.

    app.main      the `hearth` command's composition root: hands the CLI its Qt front ends
    app.ui        the window (the only PySide6 importer): viewmodels/, windows/, widgets/
    app.cli       the terminal commands
    app.core      no Qt: the chat service, routes, providers, settings, paths, the model library
    store         SQLite: the single writer, reads, migrations
    engine        generation in its own process: local llama.cpp and remote providers

Each layer imports only the ones below it (tests/project/test_layers.py enforces it).
"""
