"""Request-handling helpers shared by every service: names, paging, filters, masks, etags."""
