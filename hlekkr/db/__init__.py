"""Hlekkr's PostgreSQL database backend (ENGINE "hlekkr.db"): see base.py."""
