"""Runnable examples (``falnb serve --app examples.my_models``)."""
