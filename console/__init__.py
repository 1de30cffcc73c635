"""The Textual operations console of the appliance."""
