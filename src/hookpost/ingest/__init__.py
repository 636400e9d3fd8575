"""Events in: validation against event types, idempotency, and the fan-out into deliveries."""
