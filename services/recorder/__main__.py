"""``python -m services.recorder``"""

from services.recorder.main import main

main()
