"""Request and response models of the web API, one module per resource."""
