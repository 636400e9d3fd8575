"""Configuration the data flow reads: tenants, API keys, event types, endpoints, subscriptions.

Each module holds the queries and rules of one resource; none of them commits.
"""
