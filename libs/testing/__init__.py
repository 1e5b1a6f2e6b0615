"""Test support shared by every package: bringing up the devstack for integration and e2e tests."""
