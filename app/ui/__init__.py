"""Shared Streamlit pieces: the app shell, login page, sidebar, page guard and small helpers."""
