"""Golden-set evaluation: load a BEIR golden set, encode, retrieve, and score every query.

It imports only ``embedops.core`` of the project; training, the registry and monitoring all
measure models through it.
"""
