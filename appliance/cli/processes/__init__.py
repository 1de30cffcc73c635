"""How the command line runs the appliance's processes: serving the API and the workers (serve), handing over
to the supervisor (supervise), and starting, stopping and describing the whole appliance (lifecycle)."""
