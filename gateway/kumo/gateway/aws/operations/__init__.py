"""EC2 operations, one module per resource family; each handler takes the backend, the
caller and the parsed parameters and returns the output shape's members."""
