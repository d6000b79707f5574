"""Platform services: configuration (the one reader of the environment), AWS clients and sessions,
hashing and sealing, HTTP and webhook signing with the SSRF guard, API Gateway and handler support."""
