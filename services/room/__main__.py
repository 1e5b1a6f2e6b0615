"""``python -m services.room``"""

from services.room.main import main

main()
