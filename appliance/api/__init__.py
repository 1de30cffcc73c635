"""The web API: create_app(settings), its middleware, error mapping, schemas and one router per resource."""
