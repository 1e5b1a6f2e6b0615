"""``python -m services.hook``"""

from services.hook.main import main

main()
