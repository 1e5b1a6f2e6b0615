"""Twilio wire format: errors, form parsing, dates, paging, public URLs, signatures, OpenAPI checks."""
