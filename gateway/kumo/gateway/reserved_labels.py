"""Labels the gateway keeps for itself (an EC2 VPC's CIDR block, a subnet's zone, a
security group's VPC): their keys start with RESERVED, and every dialect hides them from
its tags and never lets a client set them."""

RESERVED = "kumo:"
