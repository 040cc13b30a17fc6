"""Test doubles that ship with the library: the deterministic consensus simulator (``sim``)."""
