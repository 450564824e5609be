"""Authentication and authorization: passwords, tokens, principals and the policy table."""
