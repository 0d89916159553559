"""The bottom layer every package builds on: errors, config loading, names, settings, the run lifecycle.

It imports nothing else of the project's (tests/unit/test_layers.py checks), so evaluation,
training, registry and monitoring can all use it.
"""
