"""Where the agent reads tenants, devices, licenses and events: KSC and Business Hub."""
