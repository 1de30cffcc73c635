"""`python -m appliance.supervisor`: run the supervisor in the foreground."""

import sys

from appliance.supervisor.main import main

sys.exit(main())
