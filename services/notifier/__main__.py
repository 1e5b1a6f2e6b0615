"""`python -m services.notifier`: run the notifier service."""

from services.notifier.main import main

main()
