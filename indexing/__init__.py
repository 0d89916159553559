"""Corpora and the per-version indexes of their vectors: build, verify, resume, search, guard.

A corpus is named and versioned (``corpus``, on disk by ``corpus_store``). An index is one model
version's vectors of one corpus version, in LanceDB (``lance``), described by a manifest
(``manifest``). ``build`` encodes in committed chunks and resumes after a kill; ``checks`` holds the
pure verification rules; ``search`` refuses a model whose weights did not build the index.
This package is handed a loaded model and its contract: it never imports the registry.
"""
