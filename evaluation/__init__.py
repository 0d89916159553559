"""Golden-set evaluation: load a BEIR golden set, encode, retrieve, and score every query.

This package is the bottom layer of embedops: it imports none of the others, and training,
the registry and monitoring all measure models through it.
"""
