"""The Mixdown devstack: installs, configures, starts and stops every local process (stdlib only)."""
