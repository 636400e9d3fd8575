"""The REST API: app factory, auth, errors, one router per resource and the pydantic schemas."""
