"""Tracking: ad-platform configurations, postbacks and their delivery worker."""
