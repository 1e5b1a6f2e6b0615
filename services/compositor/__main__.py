"""``python -m services.compositor``"""

from services.compositor.main import main

main()
