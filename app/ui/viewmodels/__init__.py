"""View-models: what a window shows and can do, as QObjects with typed signals over app.core."""
