"""
Small ready applications served by txws (echo first).
"""
