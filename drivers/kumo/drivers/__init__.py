"""Hardware drivers, one abstract base class per concern (compute, power, boot, network,
volume, metrics) with a real implementation and a configurable fake each. The first ones
arrive with the compute issue; nothing here yet."""
