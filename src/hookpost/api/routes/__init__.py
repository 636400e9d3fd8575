"""One router per resource; each route parses, authorises, calls the owning part, answers."""
