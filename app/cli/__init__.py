"""The `hearth` terminal commands. Imports app.core, store and engine; never Qt or app.ui:
the window and the benchmark (which need Qt) are handed in by app.main."""
