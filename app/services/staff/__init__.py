"""Staff: sign-in and sessions, staff administration, demo accounts."""
