"""The console's views (one per file) and its dialogs."""
