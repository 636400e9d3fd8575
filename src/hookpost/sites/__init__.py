"""What the console and the portal share: rendering, sessions, and the actions both sites
offer over one access model (``actions``)."""
