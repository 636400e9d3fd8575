"""The REST API's answers, one module per resource, and the few requests only it takes; the
create and change models it shares with the console are ``admin.schemas``'."""
