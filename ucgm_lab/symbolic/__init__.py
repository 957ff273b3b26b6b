"""Symbolic UCGM (SymPy)."""
