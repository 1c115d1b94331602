"""The OpenAPI document (openapi), built from each handler's @operation
(operation), and /docs with its offline assets (routes)."""
