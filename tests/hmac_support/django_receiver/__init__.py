"""
A minimal Django project whose one DRF view is protected exactly the way the
seed article protects its internal services.
"""
