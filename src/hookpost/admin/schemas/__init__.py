"""What tenants, event types and endpoints are created and changed with: the rules of each
field, as pydantic models. The API's request bodies and the console's forms are both these
models, so a rule holds the same through either face."""
