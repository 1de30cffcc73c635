"""Domain logic: plain functions and classes that know no web, queue, CLI or TUI framework."""
