"""Accounts, API keys, HTTP Basic auth, secret sealing and Access Token (JWT) verification."""
