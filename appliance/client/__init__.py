"""Python clients of the appliance: the web API and the supervisor's control socket."""
