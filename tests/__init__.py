"""
Tests for txws, run with C{trial tests}.
"""
